import { test, expect } from './base';
import type { Page } from '@playwright/test';
import { openChat } from './helpers';

/** An export of `count` messages, each about `bytes` long. */
function longConversation(count: number, bytes: number): string {
  const filler = 'lorem ipsum dolor sit amet '.repeat(Math.ceil(bytes / 27)).slice(0, bytes);
  const conversation = Array.from({ length: count }, (_, i) => ({
    role: i % 2 === 0 ? 'user' : 'model',
    parts: [{ text: `message ${i}: ${filler}` }],
  }));
  return JSON.stringify({ version: '1.2', conversation, conversation_summaries: [], uploaded_files: {} });
}

async function importText(page: Page, text: string, name: string) {
  await page.getByLabel('Import conversation').setInputFiles({ name, mimeType: 'application/json', buffer: Buffer.from(text) });
}

/** How long the page takes to answer a click on the message box, ms (its main thread's lag). */
async function responsiveness(page: Page): Promise<number> {
  const started = Date.now();
  await page.getByLabel('Message').click();
  await page.getByLabel('Message').fill('still here?');
  await expect(page.getByLabel('Message')).toHaveValue('still here?');
  const took = Date.now() - started;
  await page.getByLabel('Message').fill('');
  return took;
}

test('a hostile import is refused, a long one is rendered a page at a time and not reopened by itself', async ({ page }) => {
  test.setTimeout(90_000);
  await openChat(page);
  const articles = page.getByRole('log', { name: 'Conversation' }).locator('article');

  // 6,000 messages (3.7 MB): more than a person's conversation; refused at once, nothing opened.
  const hostile = longConversation(6000, 600);
  let started = Date.now();
  await importText(page, hostile, 'hostile.json');
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('“hostile.json” was not imported.');
  await expect(alert).toContainText('at most 2000');
  const refusedIn = Date.now() - started;
  await expect(articles).toHaveCount(0);

  // 1,900 messages (2.9 MB): within the limits. It opens with its newest 100 messages.
  const long = longConversation(1900, 1500);
  started = Date.now();
  await importText(page, long, 'long.json');
  await expect(articles).toHaveCount(100);
  await expect(articles.last()).toContainText('message 1899:');
  const openedIn = Date.now() - started;
  const lagOpen = await responsiveness(page);
  const earlier = page.getByRole('button', { name: /Show earlier messages/ });
  await expect(earlier).toContainText('1800 more');
  await earlier.click();
  await expect(articles).toHaveCount(200);
  await expect(articles.first()).toContainText('message 1700:');

  // A reload does not reopen it (larger than what opens by itself); the list has it.
  await page.reload();
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  started = Date.now();
  const lagReload = await responsiveness(page);
  await expect(articles).toHaveCount(0);
  const entry = page.getByRole('navigation', { name: 'Conversations' }).getByRole('link');
  await expect(entry).toHaveCount(1);
  await entry.click();
  await expect(articles).toHaveCount(100);
  const reopenedIn = Date.now() - started;
  console.log(
    `hostile import (6,000 messages, ${(hostile.length / 1e6).toFixed(1)} MB) refused in ${refusedIn} ms; ` +
      `1,900 messages (${(long.length / 1e6).toFixed(1)} MB) imported and shown in ${openedIn} ms, input lag then ${lagOpen} ms; ` +
      `after a reload: input lag ${lagReload} ms, reopened from the list in ${reopenedIn} ms`,
  );
});
