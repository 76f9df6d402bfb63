import { test, expect } from './base';
import type { Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { control, fixture, generateRequests, openChat, send, sha12 } from './helpers';

const pdf = fixture('report-3-pages.pdf');

/** Sends `text` and waits for the whole answer. */
async function ask(page: Page, text: string) {
  await send(page, text);
  await expect(page.locator('article[data-role="model"]').last()).toHaveAttribute('data-status', 'done');
}

async function exportText(page: Page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
  expect(download.suggestedFilename()).toMatch(/^parley-.*\.json$/);
  return readFileSync(await download.path()).toString('utf8');
}

async function importText(page: Page, text: string, name = 'conversation.json') {
  await page.getByLabel('Import conversation').setInputFiles({ name, mimeType: 'application/json', buffer: Buffer.from(text) });
}

const conversations = (page: Page) => page.getByRole('navigation', { name: 'Conversations' }).getByRole('link');

test('conversations survive a reload; New chat, switch, search and delete', async ({ page }) => {
  await openChat(page);
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await ask(page, 'Tell me about the quarterly report');
  await expect(conversations(page)).toHaveText(['Tell me about the quarterly report']);

  await page.getByRole('button', { name: 'New chat' }).click();
  await expect(page.locator('article')).toHaveCount(0);
  await ask(page, 'A second conversation');
  await expect(conversations(page)).toHaveText(['A second conversation', 'Tell me about the quarterly report']);

  await page.reload();
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  await expect(conversations(page)).toHaveCount(2);
  await expect(page.locator('article[data-role="user"]')).toContainText('A second conversation');

  await conversations(page).filter({ hasText: 'quarterly' }).click();
  const user = page.locator('article[data-role="user"]');
  await expect(user).toContainText('Tell me about the quarterly report');
  await expect(user.getByTestId('attachment-chip')).toContainText('report-3-pages.pdf');
  await expect(user.getByTestId('attachment-chip')).toContainText('304 KB');
  await expect(page.locator('article[data-role="model"]')).toContainText(`SHA-256 ${sha12(pdf)}`);
  // The restored conversation goes on, with its File still referenced.
  await ask(page, 'And the second page?');
  const last = (await generateRequests()).at(-1)!;
  expect(JSON.stringify(last.json)).toContain('fileData');

  await page.getByRole('searchbox', { name: 'Search conversations' }).fill('second');
  await expect(conversations(page)).toHaveText(['A second conversation']);
  await page.getByRole('searchbox', { name: 'Search conversations' }).fill('');

  await page.getByRole('button', { name: 'Delete conversation' }).click();
  const dialog = page.getByRole('alertdialog');
  await expect(dialog).toContainText('Delete this conversation?');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(conversations(page)).toHaveCount(2);
  await page.getByRole('button', { name: 'Delete conversation' }).click();
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete' }).click();
  await expect(conversations(page)).toHaveText(['A second conversation']);
  await expect(page.locator('article')).toHaveCount(0);
  await page.reload();
  await expect(conversations(page)).toHaveText(['A second conversation']);
});

test('export → import in a fresh browser is byte-stable, and importing twice does not duplicate', async ({ page, browser }) => {
  await openChat(page);
  await page.getByLabel('Attach files').setInputFiles([fixture('photo-3000x2000.jpg'), pdf]);
  await ask(page, 'Compare these');
  const first = await exportText(page);
  const parsed = JSON.parse(first);
  expect(parsed.version).toBe('1.2');
  expect(Object.keys(parsed).sort()).toEqual(['conversation', 'conversation_summaries', 'uploaded_files', 'version']);
  const parts = parsed.conversation[0].parts;
  expect(parts[0].inline_data.mime_type).toBe('image/jpeg');
  expect(parts[0].file_data.file_uri).toMatch(/\/files\/[a-z0-9]{12}$/);
  expect(parts[1].inline_data).toBeUndefined();
  expect(parts[1].file_data.mime_type).toBe('application/pdf');
  for (const [id, tracked] of Object.entries<any>(parsed.uploaded_files)) {
    expect(typeof tracked.uploadTime).toBe('number');
    expect(tracked.fileUri.endsWith(`/files/${id}`)).toBe(true);
  }

  const fresh = await browser.newContext();
  const other = await fresh.newPage();
  await openChat(other);
  await importText(other, first);
  await expect(other.locator('article[data-role="user"]')).toContainText('Compare these');
  await expect(other.locator('article[data-role="user"] [data-testid="attachment-preview"]')).toHaveCount(1);
  const second = await exportText(other);
  expect(second).toBe(first);

  await importText(other, first);
  await importText(other, second);
  await expect(conversations(other)).toHaveCount(1);
  await fresh.close();
});

test('a ChatSphere export imports; an older one keeps its live files and marks the gone ones (`import-keeps-live-files`)', async ({ page }) => {
  await openChat(page);
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await ask(page, 'upload it');
  const live = JSON.parse(await exportText(page)).conversation[0].parts[0].file_data.file_uri as string;
  const gone = live.replace(/files\/[a-z0-9]+$/, 'files/zzzzzzzzzzzz');

  // What ChatSphere's app writes: 1.2 with timestamps and uuids on parts, and its own summaries.
  const seed = {
    version: '1.2',
    conversation: [
      { role: 'user', timestamp: 1703752258000, parts: [
        { text: 'What is in this report?', timestamp: 1703752258000, lastUpdate: 1703752258000, uuid: 'u-1' },
        { file_data: { mime_type: 'application/pdf', file_uri: live } },
      ] },
      { role: 'model', parts: [{ text: 'A **three**-page report.' }] },
    ],
    conversation_summaries: [{ summary: 'a report', upTo: 2 }],
    uploaded_files: { [live.split('/').at(-1)!]: { uploadTime: Date.now(), fileUri: live } },
  };
  await importText(page, JSON.stringify(seed, null, 2), 'chatsphere.json');
  await expect(page.locator('article[data-role="user"]')).toContainText('What is in this report?');
  await expect(page.locator('article[data-role="model"] strong')).toHaveText('three');
  const roundTrip = JSON.parse(await exportText(page));
  expect(roundTrip.conversation_summaries).toEqual(seed.conversation_summaries);
  expect(roundTrip.conversation[0].parts[0].uuid).toBe('u-1');

  // 1.1: no uploaded_files. The live file stays usable; the gone one reads `expired content`.
  const older = {
    version: '1.1',
    conversation: [
      { role: 'user', parts: [{ text: 'Two files' }, { file_data: { mime_type: 'application/pdf', file_uri: live } },
        { file_data: { mime_type: 'application/pdf', file_uri: gone } }] },
      { role: 'model', parts: [{ text: 'ok' }] },
    ],
  };
  await importText(page, JSON.stringify(older), 'old.json');
  const user = page.locator('article[data-role="user"]');
  await expect(user).toContainText('Two files');
  await expect(user.getByText('expired content')).toHaveCount(1);
  await expect(user.getByRole('note')).toContainText('expired');
  await ask(page, 'still there?');
  const last = (await generateRequests()).at(-1)!;
  const sent = JSON.stringify(last.json);
  expect(sent).toContain(live);
  expect(sent).not.toContain('zzzzzzzzzzzz');
  expect(sent).toContain('expired content');
  await expect(page.locator('article[data-role="model"]').last()).toContainText('application/pdf');
});

test('a malformed or hostile import is refused with a clear error and changes nothing', async ({ page }) => {
  await openChat(page);
  await ask(page, 'keep me');
  const before = await conversations(page).allTextContents();
  const hostile: [string, string][] = [
    ['{"version": "7.3", "conversation": []}', 'version “7.3”'],
    ['{"version": "1.2", "conversation": [{"role": "user", "parts": [{"text": 42}]}]}', 'must be text'],
    ['[' .repeat(5000) + ']'.repeat(5000), 'not a conversation export'],
    [JSON.stringify([{ role: 'user', parts: [{ text: 'x'.repeat(5 * 1024 * 1024) }] }]), 'longer than'],
    ['not json at all', 'not a conversation export'],
  ];
  for (const [text, why] of hostile) {
    await importText(page, text, 'evil.json');
    const alert = page.getByRole('alert');
    await expect(alert).toContainText('“evil.json” was not imported.');
    await expect(alert).toContainText(why);
    await alert.getByRole('button', { name: 'Dismiss' }).click();
  }
  await expect(conversations(page)).toHaveText(before);
  await expect(page.locator('article[data-role="user"]')).toHaveCount(1);
  await expect(page.locator('article[data-role="user"]')).toContainText('keep me');
});
