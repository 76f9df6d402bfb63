import { readFileSync } from 'node:fs';
import { test, expect } from './base';
import { fixture, openChat, send } from './helpers';

/*
 * The smoke subset (`@smoke`): what must work on any deployment of Parley. It runs in the
 * suite (against its offline site) and, with PARLEY_E2E_URL set, against that site alone:
 *
 *   PARLEY_E2E_URL=https://chat.example.org npx playwright test --grep @smoke
 *
 * (scripts/test-container.sh runs it against the compose stack). It needs no control
 * surface, accepts whatever model answers there, and leaves nothing behind: its Files and its
 * conversation are deleted at the end.
 */

const photo = 'photo-3000x2000.jpg';
const pdf = 'report-3-pages.pdf';

test('the page loads and hydrates, with its controls', { tag: '@smoke' }, async ({ page }) => {
  await openChat(page);
  await expect(page).toHaveTitle(/Parley/);
  await expect(page.getByRole('textbox', { name: 'Message' })).toBeVisible();
  await expect(page.getByLabel('Attach files')).toBeAttached();
  await expect(page.getByRole('button', { name: 'Send' })).toBeDisabled();
});

test('a photo and a PDF are answered, listed in Files, exported, then deleted', { tag: '@smoke' }, async ({ page }) => {
  await openChat(page);
  await page.getByRole('button', { name: 'New chat' }).click();
  await page.getByLabel('Attach files').setInputFiles([fixture(photo), fixture(pdf)]);
  await expect(page.getByTestId('pending-attachment')).toHaveCount(2);
  const question = `Smoke test ${Date.now().toString(36)}: what are these two files?`;
  await send(page, question);

  // The bubble at once, then an answer streamed to its end (whatever the model says).
  const mine = page.locator('article[data-role="user"]');
  await expect(mine).toContainText(question);
  await expect(mine.getByTestId('attachment-preview')).toBeVisible();
  const answer = page.locator('article[data-role="model"]');
  await expect(answer).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
  expect((await answer.innerText()).trim().length).toBeGreaterThan(0);

  // The Files view lists both uploads.
  await page.getByRole('button', { name: 'Files', exact: true }).click();
  const files = page.getByRole('dialog', { name: 'Files' });
  for (const name of [photo, pdf]) {
    await expect(files.getByRole('row').filter({ hasText: name }).first()).toContainText('Ready');
  }
  await files.getByRole('button', { name: 'Close' }).click();

  // Export: the conversation file, version 1.2, with both Files as file_data parts.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
  const exported = JSON.parse(readFileSync(await download.path()).toString('utf8'));
  expect(exported.version).toBe('1.2');
  const parts = exported.conversation[0].parts as { text?: string; file_data?: { mime_type: string } }[];
  expect(parts.find((p) => p.text)?.text).toBe(question);
  expect(parts.filter((p) => p.file_data).map((p) => p.file_data!.mime_type).sort()).toEqual(['application/pdf', 'image/jpeg']);

  // Nothing left behind: the Files, then the conversation.
  await page.getByRole('button', { name: 'Files', exact: true }).click();
  for (const name of [photo, pdf]) {
    await files.getByRole('button', { name: `Delete ${name}` }).first().click();
    await expect(files.getByRole('row').filter({ hasText: name })).toHaveCount(0);
  }
  await expect(files.getByText('No uploads yet.')).toBeVisible();
  await files.getByRole('button', { name: 'Close' }).click();
  await page.getByRole('button', { name: 'Delete conversation' }).click();
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(page.getByRole('navigation', { name: 'Conversations' }).getByRole('link', { name: question })).toHaveCount(0);
});
