import { test, expect } from './base';
import type { Page } from '@playwright/test';
import { openChat, send } from './helpers';

/** The ids of the conversations the page has saved in IndexedDB (`parley` / `conversations`). */
async function savedIds(page: Page): Promise<string[]> {
  return page.evaluate(
    () =>
      new Promise<string[]>((resolve, reject) => {
        const open = indexedDB.open('parley');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains('conversations')) return resolve([]);
          const all = db.transaction('conversations').objectStore('conversations').getAllKeys();
          all.onsuccess = () => resolve(all.result.map(String));
          all.onerror = () => reject(all.error);
        };
      }),
  );
}

const conversations = (page: Page) => page.getByRole('navigation', { name: 'Conversations' }).getByRole('link');

test('conversation ids are 128 random bits, and an id of an earlier version still loads', async ({ page }) => {
  await openChat(page);
  for (const text of ['First of three', 'Second of three', 'Third of three']) {
    await page.getByRole('button', { name: 'New chat' }).click();
    await send(page, text);
    await expect(page.locator('article[data-role="model"]').last()).toHaveAttribute('data-status', 'done');
  }
  const ids = await savedIds(page);
  expect(ids).toHaveLength(3);
  for (const id of ids) expect(id).toMatch(/^c[0-9a-f]{32}$/);
  expect(new Set(ids).size).toBe(3);

  // A conversation saved under an earlier version's id (c + 16 hex digits from the clock).
  const [first] = ids;
  await page.evaluate(
    ({ from, to }) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open('parley');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const store = open.result.transaction('conversations', 'readwrite').objectStore('conversations');
          const read = store.get(from);
          read.onsuccess = () => {
            const record = { ...read.result, id: to, title: 'An old conversation' };
            store.delete(from);
            const put = store.put(record);
            put.onsuccess = () => resolve();
            put.onerror = () => reject(put.error);
          };
        };
      }),
    { from: first, to: 'c0123456789abcdef' },
  );
  await page.reload();
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  await expect(conversations(page)).toHaveCount(3);
  await conversations(page).filter({ hasText: 'An old conversation' }).click();
  await expect(page.locator('article[data-role="user"]').first()).toBeVisible();
  await send(page, 'and still going on');
  await expect(page.locator('article[data-role="model"]').last()).toHaveAttribute('data-status', 'done');
  expect(await savedIds(page)).toContain('c0123456789abcdef');
});
