import { test, expect } from './base';
import { fixture, openChat, send } from './helpers';

const photo = fixture('photo-3000x2000.jpg');

test('a conversation shared by link is read signed out, continued with its picture, and revoked', async ({ page, browser }) => {
  await openChat(page);
  await page.getByLabel('Attach files').setInputFiles([photo]);
  await expect(page.locator('.composer img, [data-testid="attachment-preview"]').first()).toBeVisible();
  await send(page, 'What is in this photo?');
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done', { timeout: 30_000 });

  // Share: the dialog's options, the link, Copy link; then the button says Update link.
  await page.getByRole('button', { name: 'Share', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Share' });
  await expect(dialog.getByRole('checkbox', { name: 'Include images' })).toBeChecked();
  await expect(dialog.getByRole('checkbox', { name: 'Link preview' })).not.toBeChecked();
  await dialog.getByRole('button', { name: 'Create link' }).click();
  const link = dialog.getByRole('textbox', { name: 'Link' });
  await expect(link).toHaveValue(/\/s\/[A-Za-z0-9_-]{43}$/);
  await expect(dialog.getByRole('button', { name: 'Copy link' })).toBeVisible();
  await expect(dialog.getByRole('button', { name: 'Update link' })).toBeVisible();
  const url = await link.inputValue();
  await dialog.getByRole('button', { name: 'Close' }).click();

  // Another browser, signed out: the page, rendered on the server, with no script.
  const other = await browser.newContext();
  const viewer = await other.newPage();
  const res = await viewer.goto(url);
  expect(res!.status()).toBe(200);
  expect(res!.headers()['x-robots-tag']).toBe('noindex, nofollow');
  await expect(viewer.locator('main article[data-role="user"]')).toContainText('What is in this photo?');
  await expect(viewer.locator('main article[data-role="model"]')).toContainText('image/jpeg');
  await expect(viewer.locator('img[data-testid="attachment-preview"]')).toBeVisible();
  expect(await viewer.locator('script').count(), 'no script on a shared page').toBe(0);
  const html = await viewer.content();
  expect(html).not.toContain('/files/');

  // Continue: the viewer's own copy, its picture uploaded as their own File when they send.
  await viewer.getByRole('button', { name: 'Continue this conversation' }).click();
  await expect(viewer.locator('html[data-hydrated="true"]')).toBeAttached();
  await expect(viewer.locator('article[data-role="user"]').first()).toContainText('What is in this photo?');
  await expect(viewer).toHaveURL(/\/$/);
  await send(viewer, 'And what colour is it?');
  const answer = viewer.locator('article[data-role="model"]').last();
  await expect(answer).toHaveAttribute('data-status', 'done', { timeout: 30_000 });
  await expect(answer).toContainText('image/jpeg');

  // Shared links: Revoke; the link is gone.
  await page.getByRole('button', { name: 'Shared links' }).click();
  const links = page.getByRole('dialog', { name: 'Shared links' });
  await links.getByRole('button', { name: 'Revoke' }).click();
  await expect(links).toContainText('No shared links.');
  const gone = await viewer.goto(url);
  expect(gone!.status()).toBe(410);
  await expect(viewer.locator('h1')).toContainText('revoked');
  await other.close();
});
