import { test, expect } from './base';
import type { Page } from '@playwright/test';
import { EMULATOR_CONTROL, NO_RETAIN_CONTROL, NO_RETAIN_URL } from '../playwright.config';
import { control, fileUris, fixture, generateRequests, openChat, send, sha12, uploadStarts } from './helpers';

const pdf = fixture('report-3-pages.pdf');

/** Sends `text` with the PDF attached in a new chat and waits for the answer. */
async function startWithPdf(page: Page, text: string, url = '/') {
  await openChat(page, url);
  await page.getByRole('button', { name: 'New chat' }).click();
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await send(page, text);
  await expect(page.locator('article[data-role="model"]').last()).toHaveAttribute('data-status', 'done');
}

async function exported(page: Page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
  return JSON.parse((await import('node:fs')).readFileSync(await download.path()).toString());
}

const reset = async () => {
  for (const base of [EMULATOR_CONTROL, NO_RETAIN_CONTROL]) {
    await control('/faults', undefined, 'DELETE', base);
    await control('/clock', undefined, 'DELETE', base);
  }
};
test.beforeEach(reset);
test.afterEach(reset);

test('with retention, a file past its expiry is uploaded again and the next message just works', async ({ page }) => {
  await startWithPdf(page, 'read this');
  const [old] = fileUris((await generateRequests()).at(-1)!);
  const startsBefore = (await uploadStarts()).length;
  const before = (await generateRequests()).length;

  // Two days later, by Gemini's clock: the File is gone.
  await control('/clock', { by: '49h' });
  await send(page, 'still there?');
  const answer = page.locator('article[data-role="model"]').last();
  await expect(answer).toHaveAttribute('data-status', 'done');
  await expect(answer).toContainText('You asked: “still there?”');
  // The emulator read the same bytes again: its answer quotes their SHA-256.
  await expect(answer).toContainText(`SHA-256 ${sha12(pdf)}`);
  await expect(answer).toContainText('3 pages');
  const first = page.locator('article[data-role="user"]').first();
  await expect(first.getByText('expired content')).toHaveCount(0);
  await expect(first.getByRole('note')).toHaveCount(0);

  const starts = (await uploadStarts()).slice(startsBefore);
  expect(starts).toHaveLength(1);
  expect(starts[0].json.file.displayName).toBe('report-3-pages.pdf');
  const calls = (await generateRequests()).slice(before);
  expect(calls).toHaveLength(2); // Gemini's 403, then the request with the new File
  const [fresh] = fileUris(calls[1]);
  expect(fresh).toBeTruthy();
  expect(fresh).not.toBe(old);
  expect(JSON.stringify(calls[1].json)).not.toContain('expired content');

  // The browser now holds the new URI: in its stored history and its tracking.
  const saved = await exported(page);
  expect(JSON.stringify(saved.conversation)).toContain(fresh);
  expect(JSON.stringify(saved.conversation)).not.toContain(old);
  expect(Object.keys(saved.uploaded_files)).toContain(fresh.split('/files/')[1]);
  expect(Object.keys(saved.uploaded_files)).not.toContain(old.split('/files/')[1]);

  // The next message uses it as it is: one request, no upload — also after a reload.
  await page.reload();
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  await send(page, 'third');
  await expect(page.locator('article[data-role="model"]').last()).toContainText('You asked: “third”');
  const after = (await generateRequests()).slice(before + 2);
  expect(after).toHaveLength(1);
  expect(fileUris(after[0])).toEqual([fresh]);
  expect((await uploadStarts()).length).toBe(startsBefore + 1);
});

test('without retention, a file past its expiry reads "expired content" with a notice', async ({ page }) => {
  await startWithPdf(page, 'read this', NO_RETAIN_URL);
  const startsBefore = (await uploadStarts(NO_RETAIN_CONTROL)).length;
  const before = (await generateRequests(NO_RETAIN_CONTROL)).length;
  await control('/clock', { by: '49h' }, 'POST', NO_RETAIN_CONTROL);
  await send(page, 'still there?');
  const answer = page.locator('article[data-role="model"]').last();
  await expect(answer).toHaveAttribute('data-status', 'done');
  await expect(answer).toContainText('You asked: “still there?”');
  const first = page.locator('article[data-role="user"]').first();
  await expect(first.getByText('expired content')).toBeVisible();
  await expect(first.getByRole('note')).toContainText('report-3-pages.pdf');
  const calls = (await generateRequests(NO_RETAIN_CONTROL)).slice(before);
  expect(calls).toHaveLength(2);
  expect(fileUris(calls[1])).toEqual([]);
  expect(JSON.stringify(calls[1].json)).toContain('expired content');
  expect((await uploadStarts(NO_RETAIN_CONTROL)).length).toBe(startsBefore);
});

test('without retention, an injected 403 is cleaned up and retried exactly once', async ({ page }) => {
  await startWithPdf(page, 'read this', NO_RETAIN_URL);

  // Gemini now says the file is gone ("…the File files/<id>…", the form with the prefix).
  await control('/faults', { route: 'generate', kind: 'forbidden', prefixed: true }, 'POST', NO_RETAIN_CONTROL);
  const before = (await generateRequests(NO_RETAIN_CONTROL)).length;
  await send(page, 'and again?');
  const answer = page.locator('article[data-role="model"]').last();
  await expect(answer).toHaveAttribute('data-status', 'done');
  await expect(answer).toContainText('You asked: “and again?”');
  const first = page.locator('article[data-role="user"]').first();
  await expect(first.getByText('expired content')).toBeVisible();
  await expect(first.getByRole('note')).toContainText('report-3-pages.pdf');
  const calls = (await generateRequests(NO_RETAIN_CONTROL)).slice(before);
  expect(calls).toHaveLength(2);
  expect(JSON.stringify(calls[1].json)).not.toContain('fileData');
  expect(JSON.stringify(calls[1].json)).toContain('expired content');

  // The next message sends `expired content` from the start: no more 403s.
  await send(page, 'third');
  await expect(page.locator('article[data-role="model"]').last()).toContainText('third');
  expect((await generateRequests(NO_RETAIN_CONTROL)).length).toBe(before + 3);

  // And after a reload the file is still known to be gone.
  await page.reload();
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  await expect(page.locator('article[data-role="user"]').first().getByText('expired content')).toBeVisible();
});

test('with retention, an injected 403 is answered by one re-upload and exactly one retry', async ({ page }) => {
  await startWithPdf(page, 'read this');
  await control('/faults', { route: 'generate', kind: 'forbidden' });
  const startsBefore = (await uploadStarts()).length;
  const before = (await generateRequests()).length;
  await send(page, 'and again?');
  const answer = page.locator('article[data-role="model"]').last();
  await expect(answer).toContainText('You asked: “and again?”');
  await expect(answer).toContainText(`SHA-256 ${sha12(pdf)}`);
  await expect(page.locator('article[data-role="user"]').first().getByText('expired content')).toHaveCount(0);
  expect((await generateRequests()).slice(before)).toHaveLength(2);
  expect((await uploadStarts()).length).toBe(startsBefore + 1);
});

test('a 403 that persists is an error with Gemini\'s words, with no retry loop', async ({ page }) => {
  await startWithPdf(page, 'first');
  await control('/faults', { route: 'generate', kind: 'forbidden', count: 10 });
  const before = (await generateRequests()).length;
  await send(page, 'second');
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('You do not have permission to access the File');
  await expect(alert.getByRole('button', { name: 'Retry' })).toBeVisible();
  await page.waitForTimeout(500);
  expect((await generateRequests()).length).toBe(before + 2);
});

test('another browser cannot use a file, even by importing the export that names it', async ({ page, browser }) => {
  await openChat(page);
  await page.getByRole('button', { name: 'New chat' }).click();
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await send(page, 'mine');
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
  const exported = (await import('node:fs')).readFileSync(await download.path());
  const uri = JSON.parse(exported.toString()).conversation[0].parts[0].file_data.file_uri as string;

  const other = await browser.newContext();
  const bob = await other.newPage();
  await openChat(bob);
  await bob.getByLabel('Import conversation').setInputFiles({ name: 'alice.json', mimeType: 'application/json', buffer: exported });
  await expect(bob.locator('article[data-role="user"]')).toContainText('mine');
  const before = (await generateRequests()).length;
  await send(bob, 'can I read it?');
  await expect(bob.locator('article[data-role="model"]').last()).toHaveAttribute('data-status', 'done');
  await expect(bob.locator('article[data-role="user"]').first().getByText('expired content')).toBeVisible();
  const calls = (await generateRequests()).slice(before);
  expect(calls).toHaveLength(1);
  expect(JSON.stringify(calls[0].json)).not.toContain(uri);
  await other.close();
});

test('the Files view lists this browser\'s uploads and deletes them', async ({ page }) => {
  await openChat(page);
  await page.getByRole('button', { name: 'New chat' }).click();
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await send(page, 'keep this');
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done');
  await page.getByRole('button', { name: 'Files', exact: true }).click();
  const files = page.getByRole('dialog', { name: 'Files' });
  const row = files.getByRole('row').filter({ hasText: 'report-3-pages.pdf' }).first();
  await expect(row).toContainText('304 KB');
  await expect(row).toContainText('Ready');
  await expect(row).toContainText(/in (47|48) h/);
  await expect(row.getByRole('cell').nth(4)).toHaveText('Yes'); // a retained original
  await row.getByRole('button', { name: 'Delete report-3-pages.pdf' }).click();
  await expect(files.getByText('No uploads yet.')).toBeVisible();
  await files.getByRole('button', { name: 'Close' }).click();
  await expect(page.locator('article[data-role="user"]').last().getByText('expired content')).toBeVisible();
});
