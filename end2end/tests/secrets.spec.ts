import { test, expect } from '@playwright/test';
import { KEYED_URL, SECRET_KEY } from '../playwright.config';
import { fixture, openChat, sha12 } from './helpers';

test('the API key reaches no page, asset or server-function response', async ({ page, request }) => {
  const bodies: { url: string; body: Buffer }[] = [];
  page.on('response', async (response) => {
    try {
      bodies.push({ url: response.url(), body: await response.body() });
    } catch {
      // Redirects and aborted responses have no body.
    }
  });

  await openChat(page, KEYED_URL);
  await expect(page.getByText('Offline demo')).toHaveCount(0);
  // The page says which upstream answers, and nothing more about it.
  await expect(page.getByTestId('upstream')).toHaveText('Google Gemini · gemini-2.5-flash');
  const pdf = fixture('report-3-pages.pdf');
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await page.getByRole('textbox', { name: 'Message' }).fill('Summarise');
  await page.getByRole('button', { name: 'Send' }).click();
  const answer = page.locator('article[data-role="model"]');
  await expect(answer).toHaveAttribute('data-status', 'done', { timeout: 30_000 });
  await expect(answer).toContainText(`SHA-256 ${sha12(pdf)}`);

  // A failing server function too: its error body must not carry the key either.
  const failing = await request.post(`${KEYED_URL}/api/chat`, {
    headers: { 'content-type': 'application/json' },
    data: { contents: [{ role: 'user', parts: [{ file_data: { mime_type: 'text/plain', file_uri: 'http://127.0.0.1:3401/v1beta/files/nope' } }] }] },
  });
  bodies.push({ url: 'POST /api/chat (failing)', body: await failing.body() });
  for (const path of ['/', '/pkg/parley.js', '/pkg/parley.wasm', '/pkg/parley.css', '/api/get_site_info', '/no-such-page']) {
    const response = path.startsWith('/api/') ? await request.post(KEYED_URL + path) : await request.get(KEYED_URL + path);
    bodies.push({ url: path, body: await response.body() });
  }

  const urls = bodies.map((b) => b.url);
  expect(urls.some((u) => u.includes('/api/upload_file'))).toBe(true);
  expect(urls.some((u) => u.includes('/api/chat'))).toBe(true);
  expect(urls.some((u) => u.endsWith('.wasm'))).toBe(true);
  for (const { url, body } of bodies) {
    expect(body.includes(SECRET_KEY), `the key leaked in ${url}`).toBe(false);
  }
  expect(JSON.stringify(await page.evaluate(() => ({ ...localStorage })))).not.toContain(SECRET_KEY);
});
