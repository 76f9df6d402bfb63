import { test, expect } from './base';
import type { Page } from '@playwright/test';
import { ACCOUNTS_URL } from '../playwright.config';
import { device, openChat, signIn } from './helpers';

async function filesListed(page: Page) {
  await page.getByRole('button', { name: 'Files', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Files' });
  await expect(dialog).toBeVisible();
  const text = await dialog.innerText();
  await dialog.getByRole('button', { name: 'Close' }).click();
  return text;
}

test('a guest signs in on two devices, keeps their file on both, and signs out everywhere', async ({ browser }) => {
  const laptop = await device(browser);
  // As a guest: the demo works, and a file goes up.
  await laptop.page.getByLabel('Attach files').setInputFiles([{ name: 'guest-notes.txt', mimeType: 'text/plain', buffer: Buffer.from('notes from before signing in') }]);
  await laptop.page.getByRole('textbox', { name: 'Message' }).fill('What is this?');
  await laptop.page.getByRole('button', { name: 'Send' }).click();
  await expect(laptop.page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done', { timeout: 30_000 });

  await signIn(laptop.page, 'pat');
  // The guest's conversation: offered to the account at this first sign-in here.
  await laptop.page.getByRole('dialog', { name: 'Keep these conversations?' }).getByRole('button', { name: 'Keep in my account' }).click();
  await laptop.page.getByRole('button', { name: 'Account', exact: true }).click();
  const menu = laptop.page.getByRole('menu', { name: 'Account' });
  await expect(menu).toContainText('pat@example.test');
  await expect(menu.getByRole('menuitem', { name: 'Sign out', exact: true })).toBeVisible();
  await expect(menu.getByRole('menuitem', { name: 'Sign out everywhere' })).toBeVisible();
  await laptop.page.getByRole('button', { name: 'Account', exact: true }).click();
  expect(await filesListed(laptop.page)).toContain('guest-notes.txt');

  const phone = await device(browser);
  await signIn(phone.page, 'pat');
  expect(await filesListed(phone.page), 'the same account on another device').toContain('guest-notes.txt');

  // Someone else sees nothing of Pat's.
  const other = await device(browser);
  await signIn(other.page, 'quinn');
  expect(await filesListed(other.page)).not.toContain('guest-notes.txt');

  await phone.page.getByRole('button', { name: 'Account', exact: true }).click();
  await phone.page.getByRole('menuitem', { name: 'Sign out everywhere' }).click();
  await expect(phone.page.getByRole('button', { name: 'Sign in' })).toBeVisible();
  await laptop.page.reload();
  await expect(laptop.page.getByRole('button', { name: 'Sign in' }), 'the laptop was signed out too').toBeVisible();
  expect(await filesListed(laptop.page)).not.toContain('guest-notes.txt');
  for (const d of [laptop, phone, other]) await d.context.close();
});

test('sign out ends this device only', async ({ browser }) => {
  const a = await device(browser);
  const b = await device(browser);
  await signIn(a.page, 'rae');
  await signIn(b.page, 'rae');
  await a.page.getByRole('button', { name: 'Account', exact: true }).click();
  await a.page.getByRole('menuitem', { name: 'Sign out', exact: true }).click();
  await expect(a.page.getByRole('button', { name: 'Sign in' })).toBeVisible();
  await b.page.reload();
  await expect(b.page.getByRole('button', { name: 'Account', exact: true })).toBeVisible();
  for (const d of [a, b]) await d.context.close();
});

test('a failed sign-in is a sentence on a page that stays usable', async ({ page }) => {
  await openChat(page, `${ACCOUNTS_URL}/?sign_in_error=refused`);
  await expect(page.getByRole('alert')).toContainText('The sign-in was cancelled or refused by the provider.');
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
  await page.getByRole('alert').getByRole('button', { name: 'Dismiss' }).click();
  await expect(page.getByRole('alert')).toHaveCount(0);
  await expect(page.getByRole('textbox', { name: 'Message' })).toBeEnabled();
});

test('a site without providers offers no sign-in', async ({ page }) => {
  await openChat(page);
  await expect(page.getByText('Offline demo')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Sign in' })).toHaveCount(0);
});
