import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { test, expect } from './base';
import { EMULATOR_KEY } from '../playwright.config';
import { control, fixture, openChat, savedExports, send, startParley, waitUp } from './helpers';
import type { Page } from '@playwright/test';

// Its own parley: two models to pick from, a small context budget (400 tokens, so that a few
// long questions cross it), and context caching offered.
const URL = 'http://127.0.0.1:3430';
const CONTROL = 'http://127.0.0.1:3431/_emulator';
const API = 'http://127.0.0.1:3431/v1beta';
let server: ChildProcess | undefined;

test.beforeAll(async () => {
  server = startParley(3430, 3431, {
    PARLEY_MODELS: 'gemini-2.5-flash,gemini-2.5-pro,gemini-3-pro-preview',
    PARLEY_CONTEXT_BUDGET: '400',
    PARLEY_CONTEXT_CACHING: 'opt-in',
  });
  await waitUp(URL);
});
test.afterAll(() => {
  server?.kill();
});

const answers = (page: Page) => page.locator('article[data-role="model"]');

async function sendAndWait(page: Page, text: string) {
  const before = await answers(page).count();
  await send(page, text);
  await expect(answers(page)).toHaveCount(before + 1);
  await expect(answers(page).last()).toHaveAttribute('data-status', 'done');
}

type Logged = { path: string; method: string; json: any };
async function logged(): Promise<Logged[]> {
  return (await control('/requests', undefined, 'GET', CONTROL)).requests;
}

/** The caches the built-in emulator holds for Parley's key (Gemini's own `cachedContents.list`). */
async function cachesUpstream(): Promise<any[]> {
  const response = await fetch(`${API}/cachedContents`, { headers: { 'x-goog-api-key': EMULATOR_KEY } });
  expect(response.ok).toBe(true);
  return (await response.json()).cachedContents ?? [];
}

test('the Model select decides who answers, and stays with the conversation', async ({ page }) => {
  await openChat(page, URL);
  const select = page.getByRole('combobox', { name: 'Model' });
  await expect(select.locator('option')).toHaveCount(3);
  await expect(select.locator('option').nth(1)).toHaveText('Gemini 2.5 Pro');
  await expect(select).toHaveValue('gemini-2.5-flash');
  await select.selectOption('gemini-2.5-pro');
  await sendAndWait(page, 'Which model are you?');
  await expect(answers(page).last()).toContainText('model gemini-2.5-pro');
  const streamed = (await logged()).filter((r) => r.path.includes(':streamGenerateContent'));
  expect(streamed.at(-1)!.path).toContain('models/gemini-2.5-pro:');
  // Under the answer: its prompt and answer tokens; over the composer, the conversation's sum.
  await expect(answers(page).last().locator('.usage')).toHaveText(/^[\d,]+ tokens in · [\d,]+ out/);
  await expect(page.locator('.usage-total')).toContainText(/This conversation: [\d,]+ tokens/);

  await page.reload();
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  await expect(answers(page).last()).toContainText('model gemini-2.5-pro');
  await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('gemini-2.5-pro');
  await expect(answers(page).last().locator('.usage')).toHaveText(/tokens in/);
  expect((await savedExports(page)).some((e) => JSON.parse(e).model === 'gemini-2.5-pro')).toBe(true);

  await page.getByRole('button', { name: 'New chat' }).click();
  await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('gemini-2.5-flash');
});

test('a long conversation crosses the budget: the oldest turns go as a summary, kept on export and import', async ({ page }) => {
  await openChat(page, URL);
  await page.getByRole('button', { name: 'New chat' }).click();
  const long = (n: number) => `Question number ${n}: ` + 'please consider this detail carefully. '.repeat(10);
  for (const n of [1, 2]) await sendAndWait(page, long(n));
  await expect(page.getByRole('note')).toHaveCount(0);
  const before = (await logged()).length;

  await sendAndWait(page, long(3));
  const note = page.getByRole('note');
  await expect(note).toContainText('Earlier messages summarized');
  await note.getByText('Earlier messages summarized').click();
  await expect(note.locator('.summary-text')).toBeVisible();
  await expect(note.locator('.summary-text')).toContainText('Summarize the conversation so far');

  // One generateContent call made the summary; the answer's request sent it instead of the
  // oldest turns (its first turn starts with the summary, the first question is gone).
  const calls = (await logged()).slice(before);
  expect(calls.filter((r) => r.path.includes(':generateContent')).length).toBe(1);
  const asked = calls.filter((r) => r.path.includes(':streamGenerateContent')).at(-1)!.json;
  expect(asked.contents[0].parts[0].text).toMatch(/^\[Summary of the 2 earlier messages/);
  expect(JSON.stringify(asked)).not.toContain('Question number 1:');
  expect(JSON.stringify(asked)).toContain('Question number 3:');
  expect(asked.contents.length).toBe(3);

  // The next request crosses the budget again: a renewed summary covering more turns, made
  // from the previous summary and the turns after it (never the same turns summarized twice).
  const beforeFifth = (await logged()).length;
  await sendAndWait(page, 'short');
  const fifth = (await logged()).slice(beforeFifth);
  const summaryCalls = fifth.filter((r) => r.path.includes(':generateContent'));
  const lastAsked = fifth.filter((r) => r.path.includes(':streamGenerateContent')).at(-1)!.json;
  expect(lastAsked.contents[0].parts[0].text).toMatch(/^\[Summary of the 4 earlier messages/);
  expect(summaryCalls).toHaveLength(1);
  expect(JSON.stringify(summaryCalls[0].json)).toContain('[Summary of the 2 earlier messages');
  expect(JSON.stringify(summaryCalls[0].json)).not.toContain('Question number 1:');

  // Export → import keeps the summaries exactly.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
  const exported = JSON.parse(readFileSync(await download.path()).toString('utf8'));
  expect(exported.conversation_summaries.length).toBeGreaterThanOrEqual(1);
  expect(exported.conversation_summaries[0]).toMatchObject({ turns: 2, model: 'gemini-2.5-flash' });
  expect(exported.conversation_summaries[0].turns_sha256).toMatch(/^[0-9a-f]{64}$/);
  await page.getByRole('button', { name: 'New chat' }).click();
  await expect(page.getByRole('note')).toHaveCount(0);
  await page.getByLabel('Import conversation').setInputFiles({
    name: 'summarized.json',
    mimeType: 'application/json',
    buffer: Buffer.from(JSON.stringify(exported)),
  });
  await expect(page.getByRole('note')).toContainText('Earlier messages summarized');
  const [again] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
  const reExported = JSON.parse(readFileSync(await again.path()).toString('utf8'));
  expect(reExported.conversation_summaries).toEqual(exported.conversation_summaries);
});

test('Cache files: below the minimum it says why; above it answers report cached tokens; deleting the conversation deletes the cache', async ({ page }) => {
  await openChat(page, URL);
  await page.getByRole('button', { name: 'New chat' }).click();
  const cacheSwitch = page.getByRole('switch', { name: 'Cache files' });
  await expect(cacheSwitch).not.toBeChecked();
  await cacheSwitch.check();
  await page.getByLabel('Attach files').setInputFiles([fixture('report-3-pages.pdf')]);
  await sendAndWait(page, 'What is in the small report?');
  await expect(page.locator('.cache-note')).toContainText(/Nothing is cached: the files are 774 tokens, and Gemini caches [\d,]+ or more/);
  await expect(answers(page).last().locator('.usage')).not.toContainText('cached');

  await page.getByRole('button', { name: 'New chat' }).click();
  await expect(page.getByRole('switch', { name: 'Cache files' })).not.toBeChecked();
  const cachesBefore = (await cachesUpstream()).length;
  await page.getByRole('switch', { name: 'Cache files' }).check();
  await page.getByLabel('Attach files').setInputFiles([fixture('report-100-pages.pdf')]);
  await sendAndWait(page, 'What is in the long report?');
  await expect(page.locator('.cache-note')).toContainText('25,800 tokens of files are cached');
  await expect(answers(page).last()).toContainText('100 pages');
  await sendAndWait(page, 'And on its last page?');
  await expect(answers(page).last().locator('.usage')).toContainText('25,800 cached');
  const streamed = (await logged()).filter((r) => r.path.includes(':streamGenerateContent')).at(-1)!.json;
  expect(streamed.cachedContent).toMatch(/^cachedContents\//);
  expect(JSON.stringify(streamed.contents)).not.toContain('fileData');
  expect((await cachesUpstream()).length).toBe(cachesBefore + 1);

  await page.getByRole('button', { name: 'Delete conversation' }).click();
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete' }).click();
  await expect.poll(async () => (await cachesUpstream()).length).toBe(cachesBefore);
});

test("Gemini 3's thought signatures go back with their turn, never shown, and survive a reload", async ({ page }) => {
  await openChat(page, URL);
  await page.getByRole('combobox', { name: 'Model' }).selectOption('gemini-3-pro-preview');
  await sendAndWait(page, 'First question for Gemini 3');
  await expect(answers(page).last().locator('.usage')).toContainText('thinking');
  const signature = (await logged()).length;
  await sendAndWait(page, 'Second question');
  const sent = (await logged()).slice(signature).filter((r) => r.path.includes(':streamGenerateContent')).at(-1)!.json;
  const modelTurn = sent.contents[1];
  expect(modelTurn.role).toBe('model');
  const signed = modelTurn.parts.filter((p: any) => p.thoughtSignature);
  expect(signed.length).toBe(1);
  await expect(page.locator('.log')).not.toContainText(signed[0].thoughtSignature);
  // No empty bubble: two answers, each with text.
  await expect(answers(page)).toHaveCount(2);
  for (const answer of await answers(page).all()) await expect(answer.locator('.text')).toContainText('You asked');
  // Stored with the conversation and sent again after a reload.
  await page.reload();
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  const before = (await logged()).length;
  await sendAndWait(page, 'Third question');
  const again = (await logged()).slice(before).filter((r) => r.path.includes(':streamGenerateContent')).at(-1)!.json;
  expect(again.contents[1].parts.some((p: any) => p.thoughtSignature === signed[0].thoughtSignature)).toBe(true);
});

test('a model outside PARLEY_MODELS is refused with a clear error', async ({ page }) => {
  await openChat(page, URL);
  const answer = await page.evaluate(async () => {
    const response = await fetch('/api/chat', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }], options: { model: 'gemini-1.0-ultra' } }),
    });
    return { status: response.status, text: await response.text() };
  });
  expect(answer.status).toBe(400);
  expect(answer.text).toContain('gemini-1.0-ultra');
  expect(answer.text).toContain('gemini-2.5-pro');
});
