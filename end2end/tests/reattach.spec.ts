import { test, expect } from './base';
import { fixture, openChat, send, uploadStarts } from './helpers';

const pdf = fixture('report-3-pages.pdf');

// The page hashes each attachment (in a worker) and asks `find_upload` before sending it:
// content this session already has ACTIVE is not sent again, not even to Parley.
test('a file attached again is found by its SHA-256 and not sent again', async ({ page }) => {
  await openChat(page);
  const uploads: string[] = [];
  const finds: string[] = [];
  page.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if (path === '/api/upload_file') uploads.push(path);
    if (path === '/api/find_upload') finds.push(r.postData() ?? '');
  });
  const startsBefore = (await uploadStarts()).length;

  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await send(page, 'What is this?');
  await expect(page.locator('article[data-role="model"]').last()).toContainText('application/pdf, 304199 bytes', { timeout: 30_000 });
  expect(finds).toHaveLength(1);
  expect(uploads).toHaveLength(1);
  // The emulator's list of files ends before its "You asked" line.
  await expect(page.locator('article[data-role="model"] li').first()).not.toContainText('You asked');
  await expect(page.locator('article[data-role="model"] p', { hasText: 'You asked: “What is this?”' })).toHaveCount(1);
  const sha256 = JSON.parse(finds[0]).sha256 as string;
  expect(sha256).toMatch(/^[0-9a-f]{64}$/);

  await page.getByLabel('Attach files').setInputFiles([pdf]);
  const t0 = Date.now();
  await send(page, 'And again?');
  await expect(page.locator('article[data-role="model"]')).toHaveCount(2, { timeout: 30_000 });
  await expect(page.locator('article[data-role="model"]').last()).toContainText('application/pdf, 304199 bytes', { timeout: 30_000 });
  console.log(`re-attached PDF: answered ${Date.now() - t0} ms after Send, with no upload request`);
  expect(finds).toHaveLength(2);
  expect(JSON.parse(finds[1]).sha256, 'the same content, the same hash').toBe(sha256);
  expect(uploads, 'nothing sent the second time').toHaveLength(1);
  expect((await uploadStarts()).length - startsBefore, 'one upload upstream').toBe(1);
});
