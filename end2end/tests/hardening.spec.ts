import { test, expect } from './base';
import { OFFLINE_URL } from '../playwright.config';
import { fixture, openChat } from './helpers';

test('the page runs under its Content-Security-Policy without a single violation', async ({ page }) => {
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to (load|execute|apply|connect)/i.test(message.text())) violations.push(message.text());
  });
  const response = await page.goto('/');
  const csp = response!.headers()['content-security-policy'];
  expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=_-]+' 'wasm-unsafe-eval'/);
  expect(csp).toContain("frame-ancestors 'none'");
  expect(response!.headers()['x-content-type-options']).toBe('nosniff');
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  // Everything the page does: previews (data: URLs), XHR uploads, streaming, code highlighting.
  await page.getByLabel('Attach files').setInputFiles([fixture('photo-3000x2000.jpg'), fixture('report-3-pages.pdf')]);
  await page.getByRole('textbox', { name: 'Message' }).fill('Show me `code`');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done');
  await page.getByRole('button', { name: 'Files', exact: true }).click();
  await expect(page.getByRole('dialog', { name: 'Files' }).getByRole('row')).toHaveCount(3);
  expect(violations).toEqual([]);
});

test('another site cannot make the browser change anything here (CSRF)', async ({ page }) => {
  await openChat(page);
  await page.getByRole('button', { name: 'New chat' }).click();
  await page.getByLabel('Attach files').setInputFiles([fixture('report-3-pages.pdf')]);
  await page.getByRole('textbox', { name: 'Message' }).fill('keep it');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done');
  const uris: string[] = await page.evaluate(async () => {
    const res = await fetch('/api/list_uploads', { method: 'POST' });
    return (await res.json()).map((r: { uri: string }) => r.uri);
  });
  expect(uris).toHaveLength(1);

  // A page of another origin (same host, another port: the standalone emulator, whose pages
  // carry no policy — Parley's own would not even let a page connect elsewhere) posts to Parley
  // with the person's cookie.
  await page.goto('http://127.0.0.1:3401/');
  await page.evaluate(
    async ({ target, uri }) => {
      await fetch(`${target}/api/delete_upload`, {
        method: 'POST',
        mode: 'no-cors',
        credentials: 'include',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: `uri=${encodeURIComponent(uri)}`,
      });
    },
    { target: OFFLINE_URL, uri: uris[0] },
  );
  // Refused: the upload is still there.
  await openChat(page);
  const after: string[] = await page.evaluate(async () => {
    const res = await fetch('/api/list_uploads', { method: 'POST' });
    return (await res.json()).map((r: { uri: string }) => r.uri);
  });
  expect(after).toEqual(uris);
});
