import { test, expect, type Page } from '@playwright/test';
import { control, fixture, generateRequests, openChat } from './helpers';

const pdf = fixture('report-3-pages.pdf');

async function send(page: Page, text: string) {
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

test.beforeEach(async () => {
  await control('/faults', undefined, 'DELETE');
});

test('a 403 for a file of the conversation is cleaned up and retried exactly once', async ({ page }) => {
  await openChat(page);
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await send(page, 'read this');
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done');

  // Gemini now says the file is gone ("…the File files/<id>…", the form with the prefix).
  await control('/faults', { route: 'generate', kind: 'forbidden', prefixed: true });
  const before = (await generateRequests()).length;
  await send(page, 'and again?');
  const answer = page.locator('article[data-role="model"]').last();
  await expect(answer).toHaveAttribute('data-status', 'done');
  await expect(answer).toContainText('You asked: “and again?”');
  const first = page.locator('article[data-role="user"]').first();
  await expect(first.getByText('expired content')).toBeVisible();
  await expect(first.getByRole('note')).toContainText('report-3-pages.pdf');
  const calls = (await generateRequests()).slice(before);
  expect(calls).toHaveLength(2);
  expect(JSON.stringify(calls[1].json)).not.toContain('fileData');
  expect(JSON.stringify(calls[1].json)).toContain('expired content');

  // The next message sends `expired content` from the start: no more 403s.
  await send(page, 'third');
  await expect(page.locator('article[data-role="model"]').last()).toContainText('third');
  expect((await generateRequests()).length).toBe(before + 3);

  // And after a reload the file is still known to be gone.
  await page.reload();
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  await expect(page.locator('article[data-role="user"]').first().getByText('expired content')).toBeVisible();
});

test('a 403 that persists is an error with Gemini\'s words, with no retry loop', async ({ page }) => {
  await openChat(page);
  await page.getByRole('button', { name: 'New chat' }).click();
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await send(page, 'first');
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done');
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
  await expect(row).toContainText('No');
  await row.getByRole('button', { name: 'Delete report-3-pages.pdf' }).click();
  await expect(files.getByText('No uploads yet.')).toBeVisible();
  await files.getByRole('button', { name: 'Close' }).click();
  await expect(page.locator('article[data-role="user"]').last().getByText('expired content')).toBeVisible();
});
