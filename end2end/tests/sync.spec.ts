import { test, expect } from './base';
import type { Page } from '@playwright/test';
import { device, send, signIn } from './helpers';

/** A login of its own per test: each test starts with an empty account. */
const login = (name: string) => `${name}-${Date.now().toString(36)}`;

const status = (page: Page) => page.getByRole('status', { name: 'Sync' });
const list = (page: Page) => page.getByRole('navigation', { name: 'Conversations' });

async function answered(page: Page, count: number) {
  const answers = page.locator('article[data-role="model"]');
  await expect(answers).toHaveCount(count, { timeout: 30_000 });
  await expect(answers.last()).toHaveAttribute('data-status', 'done', { timeout: 30_000 });
}

/**
 * Waits until the browser holds `count` conversations, every one of the account and none with
 * a change the server lacks (`dirty`): what it has is all on the server.
 */
async function allSynced(page: Page, count: number) {
  const held = () =>
    page.evaluate(
      () =>
        new Promise<string>((resolve, reject) => {
          const open = indexedDB.open('parley');
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const db = open.result;
            const all = db.transaction('conversations').objectStore('conversations').getAll();
            all.onsuccess = () => {
              const records = all.result as { account: string; dirty: boolean }[];
              db.close();
              resolve(`${records.filter((r) => r.account && !r.dirty).length} of ${records.length}`);
            };
            all.onerror = () => reject(all.error);
          };
        }),
    );
  await expect.poll(held, { timeout: 10_000 }).toBe(`${count} of ${count}`);
}

test('a message sent on one device shows on the other within a second or two', async ({ browser }) => {
  const who = login('sync-live');
  const a = await device(browser);
  const b = await device(browser);
  await signIn(a.page, who);
  await signIn(b.page, who);
  await expect(status(a.page)).toHaveText('Synced');
  await expect(status(b.page)).toHaveText('Synced');

  await send(a.page, 'Hello from the laptop');
  await answered(a.page, 1);
  await expect(list(b.page).getByRole('link', { name: 'Hello from the laptop' })).toBeVisible({ timeout: 5_000 });
  await list(b.page).getByRole('link', { name: 'Hello from the laptop' }).click();
  await expect(b.page.locator('article[data-role="user"]')).toHaveText(/Hello from the laptop/);

  // B follows the open conversation: A's next message appears without a reload.
  await send(a.page, 'And a second one');
  await answered(a.page, 2);
  await expect(b.page.locator('article[data-role="user"]')).toHaveCount(2, { timeout: 5_000 });
  await expect(b.page.locator('article[data-role="model"]')).toHaveCount(2);
  await expect(status(b.page)).toHaveText('Synced');
  for (const d of [a, b]) await d.context.close();
});

test('an edit made offline while another device appends keeps both versions', async ({ browser }) => {
  const who = login('sync-conflict');
  const a = await device(browser);
  const b = await device(browser);
  await signIn(a.page, who);
  await signIn(b.page, who);
  await send(a.page, 'The first question');
  await answered(a.page, 1);
  await list(b.page).getByRole('link', { name: 'The first question' }).click();
  await expect(b.page.locator('article[data-role="model"]')).toHaveCount(1, { timeout: 5_000 });

  // B goes offline and edits the question (its answer cannot come: the edit is kept).
  await b.context.setOffline(true);
  await b.page.locator('article[data-role="user"]').getByRole('button', { name: 'Edit' }).click();
  await b.page.getByRole('textbox', { name: 'Edit message' }).fill('The question, edited offline');
  await b.page.getByRole('button', { name: 'Save and send' }).click();
  await expect(b.page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'error', { timeout: 30_000 });
  await expect(status(b.page)).toHaveText('Offline — changes will sync', { timeout: 10_000 });

  // Meanwhile A appends.
  await send(a.page, 'A follow-up from the laptop');
  await answered(a.page, 2);

  // B comes back: the server keeps A's conversation and B's version as a copy.
  await b.context.setOffline(false);
  const copy = list(b.page).getByRole('link', { name: /The question, edited offline \(conflict, .+ on .+ \d{4}-\d\d-\d\d \d\d:\d\d UTC\)/ });
  await expect(copy).toBeVisible({ timeout: 15_000 });
  await expect(status(b.page)).toHaveText('Synced', { timeout: 15_000 });
  await expect(b.page.locator('article[data-role="user"]').first()).toContainText('The question, edited offline');

  // Both versions on both devices.
  await expect(list(a.page).getByRole('link', { name: /\(conflict, / })).toBeVisible({ timeout: 5_000 });
  await list(b.page).getByRole('link', { name: 'The first question', exact: true }).click();
  await expect(b.page.locator('article[data-role="user"]')).toHaveCount(2);
  await expect(b.page.locator('article[data-role="user"]').last()).toContainText('A follow-up from the laptop');
  for (const d of [a, b]) await d.context.close();
});

test('a browser whose data was cleared gets everything back at sign-in; delete and restore reach every device', async ({ browser }) => {
  const who = login('sync-restore');
  const a = await device(browser);
  await signIn(a.page, who);
  await send(a.page, 'Keep this one');
  await answered(a.page, 1);
  await a.page.getByRole('button', { name: 'New chat' }).click();
  await send(a.page, 'And this one too');
  await answered(a.page, 1);
  await expect(status(a.page)).toHaveText('Synced');
  await allSynced(a.page, 2);

  // Clear everything the site keeps in the browser: cookies, IndexedDB, localStorage.
  await a.page.evaluate(async () => {
    localStorage.clear();
    await new Promise((resolve) => {
      const gone = indexedDB.deleteDatabase('parley');
      gone.onsuccess = gone.onerror = gone.onblocked = resolve;
    });
  });
  await a.context.clearCookies();
  await a.page.reload();
  await expect(a.page.getByRole('button', { name: 'Sign in' })).toBeVisible();
  await expect(list(a.page).getByRole('link')).toHaveCount(0);
  await signIn(a.page, who);
  await expect(list(a.page).getByRole('link', { name: 'Keep this one' })).toBeVisible({ timeout: 10_000 });
  await expect(list(a.page).getByRole('link', { name: 'And this one too' })).toBeVisible();

  // Deleted on A: gone from B too, until restored from Recently deleted.
  const b = await device(browser);
  await signIn(b.page, who);
  await expect(list(b.page).getByRole('link', { name: 'Keep this one' })).toBeVisible({ timeout: 10_000 });
  await list(a.page).getByRole('link', { name: 'Keep this one' }).click();
  await a.page.getByRole('button', { name: 'Delete conversation' }).click();
  await expect(a.page.getByRole('alertdialog')).toContainText('removed from all your devices');
  await a.page.getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(list(b.page).getByRole('link', { name: 'Keep this one' })).toHaveCount(0, { timeout: 10_000 });

  await b.page.getByRole('button', { name: 'Recently deleted' }).click();
  const deleted = b.page.getByRole('dialog', { name: 'Recently deleted' });
  await expect(deleted).toContainText('Keep this one');
  await expect(deleted).toContainText('kept 30 more days');
  await deleted.getByRole('button', { name: 'Restore Keep this one' }).click();
  await expect(deleted).toContainText('Nothing deleted in the last 30 days.');
  await deleted.getByRole('button', { name: 'Close' }).click();
  await expect(list(a.page).getByRole('link', { name: 'Keep this one' })).toBeVisible({ timeout: 10_000 });
  await expect(list(b.page).getByRole('link', { name: 'Keep this one' })).toBeVisible({ timeout: 10_000 });
  for (const d of [a, b]) await d.context.close();
});

test('at the first sign-in, conversations made signed out can go into the account or stay on the device', async ({ browser }) => {
  const who = login('sync-adopt');
  const a = await device(browser);
  await send(a.page, 'Written before signing in');
  await answered(a.page, 1);
  await signIn(a.page, who);
  const offer = a.page.getByRole('dialog', { name: 'Keep these conversations?' });
  await expect(offer).toContainText('a conversation from before you signed in');
  await offer.getByRole('button', { name: 'Keep in my account' }).click();
  await expect(offer).toBeHidden();
  await expect(list(a.page).getByRole('link', { name: 'Written before signing in' })).toBeVisible();
  await expect(a.page.locator('article[data-role="user"]'), 'and opened').toContainText('Written before signing in');

  const b = await device(browser);
  await signIn(b.page, who);
  await expect(list(b.page).getByRole('link', { name: 'Written before signing in' })).toBeVisible({ timeout: 10_000 });
  await expect(b.page.getByRole('dialog', { name: 'Keep these conversations?' }), 'nothing to offer on B').toHaveCount(0);

  // Another guest who leaves theirs on the device: not in the account, still there signed out.
  const c = await device(browser);
  await send(c.page, 'Stays on this browser');
  await answered(c.page, 1);
  await signIn(c.page, login('sync-leave'));
  await c.page.getByRole('dialog', { name: 'Keep these conversations?' }).getByRole('button', { name: 'Leave on this device' }).click();
  await expect(list(c.page).getByRole('link', { name: 'Stays on this browser' })).toHaveCount(0);
  await c.page.reload();
  await expect(c.page.getByRole('dialog', { name: 'Keep these conversations?' }), 'asked once').toHaveCount(0);
  for (const d of [a, b, c]) await d.context.close();
});

test('an import while signed in is synced; an export has no sync ids in it', async ({ browser }) => {
  const who = login('sync-import');
  const a = await device(browser);
  const b = await device(browser);
  await signIn(a.page, who);
  await signIn(b.page, who);
  const exported = JSON.stringify({
    version: '1.2',
    conversation: [
      { role: 'user', parts: [{ text: 'Imported on the laptop' }] },
      { role: 'model', parts: [{ text: 'And read on the phone.' }] },
    ],
    conversation_summaries: [],
    uploaded_files: {},
  });
  await a.page.getByLabel('Import conversation').setInputFiles({ name: 'notes.json', mimeType: 'application/json', buffer: Buffer.from(exported) });
  await expect(a.page.locator('article[data-role="model"]')).toContainText('And read on the phone.');
  const link = list(b.page).getByRole('link', { name: 'Imported on the laptop' });
  await expect(link).toBeVisible({ timeout: 5_000 });
  await link.click();
  await expect(b.page.locator('article[data-role="model"]')).toContainText('And read on the phone.');

  const download = b.page.waitForEvent('download');
  await b.page.getByRole('button', { name: 'Export' }).click();
  const text = await (await (await download).createReadStream()).toArray();
  const json = JSON.parse(Buffer.concat(text).toString('utf8'));
  expect(json.version).toBe('1.2');
  expect(json.conversation.map((m: any) => m.parts[0].text)).toEqual(['Imported on the laptop', 'And read on the phone.']);
  expect(JSON.stringify(json)).not.toContain('"id"');
  for (const d of [a, b]) await d.context.close();
});
