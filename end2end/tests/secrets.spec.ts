import { SECRETS, test, expect } from './base';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { KEYED_CONTROL, KEYED_URL, SECRET_KEY, logOf } from '../playwright.config';
import { control, fixture, openChat, sha12 } from './helpers';

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

  // Failing server functions too — Parley refuses the type; Gemini refuses the upload — their
  // error bodies must not carry the key.
  const failing = await request.post(`${KEYED_URL}/api/upload_file`, {
    multipart: { size: '3', mime_type: 'application/zip', name: 'a.zip', file: { name: 'a.zip', mimeType: 'application/zip', buffer: Buffer.from('PK!') } },
  });
  expect(failing.status()).toBe(415);
  bodies.push({ url: 'POST /api/upload_file (refused by Parley)', body: await failing.body() });
  await control('/faults', { route: 'start', kind: 'forbidden', file: 'refused' }, 'POST', KEYED_CONTROL);
  const forbidden = await request.post(`${KEYED_URL}/api/upload_file`, {
    multipart: { size: '3', mime_type: 'text/plain', name: 'a.txt', file: { name: 'a.txt', mimeType: 'text/plain', buffer: Buffer.from('abc') } },
  });
  expect(forbidden.ok()).toBe(false);
  bodies.push({ url: 'POST /api/upload_file (refused by Gemini)', body: await forbidden.body() });
  // A whole streamed answer read here (the page's own may still be streaming into its body).
  const chat = await request.post(`${KEYED_URL}/api/chat`, {
    headers: { 'content-type': 'application/json' },
    data: { contents: [{ role: 'user', parts: [{ text: 'hello' }] }] },
  });
  expect(chat.status()).toBe(200);
  bodies.push({ url: 'POST /api/chat (read whole)', body: await chat.body() });
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

test('no secret, and no panic, is in any parley log of the run (every server of the suite, the keyed one at debug level)', async () => {
  const root = path.join(__dirname, '..', '..');
  const logs = readdirSync(path.join(root, 'target', 'e2e-data')).filter((f) => /^parley-\d+\.log$/.test(f));
  // The suite's servers, and those the restart, fault and replica specs started themselves.
  expect(logs).toEqual(expect.arrayContaining([3400, 3402, 3406, 3408, 3410, 3421, 3422, 3430, 3440].map((port) => path.basename(logOf(port)))));
  // 3406 logs JSON: one object a line, and the same scan below covers it.
  const json = readFileSync(path.join(root, logOf(3406)), 'utf8').trim().split('\n');
  expect(json.length).toBeGreaterThan(10);
  for (const line of json) expect(() => JSON.parse(line), line).not.toThrow();
  const keyed = readFileSync(path.join(root, logOf(3402)), 'utf8');
  expect(keyed).toContain('upload ACTIVE'); // the log is the real one, and it saw this run's uploads
  expect(keyed).toContain('gemini call failed'); // and the upload Gemini refused
  for (const log of logs) {
    const text = readFileSync(path.join(root, 'target', 'e2e-data', log), 'utf8');
    // Nor a panic: a render or a request that panicked is a bug even when the page survived it.
    expect(text.includes('panicked at'), `a panic in ${log}`).toBe(false);
    for (const { name, pattern } of SECRETS) {
      const found = typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text);
      expect(found, `${name} in ${log}`).toBe(false);
    }
  }
});
