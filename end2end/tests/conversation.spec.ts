import { test, expect } from './base';
import { readFileSync } from 'node:fs';
import { control, fixture, generateRequests, openChat, send, sha12 } from './helpers';

const photo = fixture('photo-3000x2000.jpg');

test.beforeEach(async () => {
  await control('/faults', undefined, 'DELETE');
});

test('answers render as Markdown, and an XSS answer stays inert', async ({ page }) => {
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await control('/answers', {
    texts: [
      '# Findings\n\n**Bold** and `code`.\n\n```rust\nfn main() {}\n```\n\n' +
        '[click me](javascript:window.__xss=1) <img src=x onerror="window.__xss=2"> ' +
        '<script>window.__xss=3</script>\n\n![pic](javascript:window.__xss=4)\n\n<svg onload="window.__xss=5"></svg>',
    ],
  });
  await openChat(page);
  await send(page, 'hi');
  const answer = page.locator('article[data-role="model"]');
  await expect(answer).toHaveAttribute('data-status', 'done');
  await expect(answer.getByRole('heading', { name: 'Findings' })).toBeVisible();
  await expect(answer.locator('strong')).toHaveText('Bold');
  await expect(answer.locator('pre code.language-rust')).toHaveText('fn main() {}');
  // Code blocks are coloured once the answer is complete.
  await expect(answer.locator('pre code.language-rust .hljs-keyword')).toHaveText('fn');
  // The raw HTML is shown as text, not run.
  await expect(answer).toContainText('<img src=x onerror="window.__xss=2">');
  const rendered = answer.locator('.markdown');
  await expect(rendered.locator('script, img[onerror], svg, iframe, [onload]')).toHaveCount(0);
  await expect(rendered.locator('a[href^="javascript"], img[src^="javascript"]')).toHaveCount(0);
  await answer.getByText('click me').click();
  await page.waitForTimeout(200);
  expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  expect(dialogs).toEqual([]);
});

test('Stop ends a streaming answer and keeps what arrived; Esc does too', async ({ page }) => {
  await openChat(page);
  for (const how of ['button', 'escape'] as const) {
    await control('/faults', { route: 'generate', kind: 'slow_stream', chunk_delay: '700ms' });
    await send(page, `one two three four five six seven eight nine ten (${how})`);
    const answer = page.locator('article[data-role="model"]').last();
    await expect(answer).toHaveAttribute('data-status', 'streaming');
    await expect(answer).toContainText('I received');
    if (how === 'button') await page.getByRole('button', { name: 'Stop' }).click();
    else await page.keyboard.press('Escape');
    await expect(answer).toHaveAttribute('data-status', 'done');
    await expect(answer.getByText('Stopped')).toBeVisible();
    await expect(page.getByRole('button', { name: 'Stop' })).toHaveCount(0);
    await expect(answer).not.toContainText('built-in Gemini emulator');
  }
  // The chat goes on.
  await send(page, 'after stopping');
  await expect(page.locator('article[data-role="model"]').last()).toContainText('after stopping');
});

test('Regenerate asks again for the last answer', async ({ page }) => {
  await control('/answers', { texts: ['First answer.', 'Second answer.'] });
  await openChat(page);
  await send(page, 'question');
  const answers = page.locator('article[data-role="model"]');
  await expect(answers.locator('.text')).toHaveText('First answer.');
  const before = (await generateRequests()).length;
  await page.getByRole('button', { name: 'Regenerate' }).click();
  await expect(answers).toHaveCount(1);
  await expect(answers.locator('.text')).toHaveText('Second answer.');
  await expect(answers).toHaveAttribute('data-status', 'done');
  expect((await generateRequests()).length).toBe(before + 1);
});

test('a sent message can be edited and sent again; later turns are replaced', async ({ page }) => {
  await openChat(page);
  await page.getByLabel('Attach files').setInputFiles([photo]);
  await send(page, 'original question');
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done');
  const user = page.locator('article[data-role="user"]');
  await user.getByRole('button', { name: 'Edit' }).click();
  await page.getByRole('textbox', { name: 'Edit message' }).fill('edited question');
  const uploadsBefore = (await control('/requests')).requests.filter((r: any) => r.upload_command === 'start').length;
  await page.getByRole('button', { name: 'Save and send' }).click();
  await expect(user).toHaveCount(1);
  await expect(user).toContainText('edited question');
  const answer = page.locator('article[data-role="model"]');
  await expect(answer).toHaveCount(1);
  await expect(answer).toContainText('You asked: “edited question”');
  await expect(answer).toContainText(`SHA-256 ${sha12(photo)}`);
  const uploadsAfter = (await control('/requests')).requests.filter((r: any) => r.upload_command === 'start').length;
  expect(uploadsAfter, 'the photo is not uploaded twice').toBe(uploadsBefore);
  // What went to Gemini: file_data and text, never the preview's inline_data.
  const last = (await generateRequests()).at(-1)!;
  const parts = last.json.contents.flatMap((c: any) => c.parts);
  expect(parts.some((p: any) => p.fileData?.fileUri)).toBe(true);
  expect(JSON.stringify(last.json)).not.toContain('inlineData');
  expect(JSON.stringify(last.json)).not.toContain('inline_data');
});

test('files can be dropped on the chat and pasted into the message box', async ({ page }) => {
  await openChat(page);
  const dropped = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['# dropped notes'], 'dropped.md', { type: '' }));
    return dt;
  });
  await page.dispatchEvent('main', 'dragover', { dataTransfer: dropped });
  await page.dispatchEvent('main', 'drop', { dataTransfer: dropped });
  await expect(page.getByTestId('pending-attachment')).toContainText('dropped.md');

  await page.evaluate(async () => {
    const canvas = new OffscreenCanvas(64, 48);
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#3b5bdb';
    ctx.fillRect(0, 0, 64, 48);
    const blob = await canvas.convertToBlob({ type: 'image/png' });
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'pasted.png', { type: 'image/png' }));
    const box = document.querySelector('textarea[aria-label="Message"]')!;
    box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  });
  await expect(page.getByTestId('pending-attachment')).toHaveCount(2);
  await expect(page.getByTestId('pending-attachment').nth(1)).toContainText('pasted.png');
  await send(page, 'what are these?');
  const answer = page.locator('article[data-role="model"]');
  await expect(answer).toContainText('text/markdown, 15 bytes');
  await expect(answer).toContainText('image/png');
  await expect(answer).toContainText('64×48 px');
  await expect(page.locator('article[data-role="user"] [data-testid="attachment-preview"]')).toHaveCount(1);
});

test('types Gemini does not take are refused before any byte is sent, and at most 10 files go', async ({ page }) => {
  await openChat(page);
  await control('/requests', undefined, 'DELETE');
  await page.getByLabel('Attach files').setInputFiles([
    { name: 'setup.exe', mimeType: 'application/x-msdownload', buffer: Buffer.from('MZ') },
    { name: 'archive.zip', mimeType: 'application/zip', buffer: Buffer.from('PK') },
  ]);
  const notice = page.getByRole('alert');
  await expect(notice).toContainText('“setup.exe”, “archive.zip” can\'t be sent');
  await expect(page.getByTestId('pending-attachment')).toHaveCount(0);
  await notice.getByRole('button', { name: 'Dismiss' }).click();
  await expect(page.getByRole('alert')).toHaveCount(0);

  const many = Array.from({ length: 12 }, (_, i) => ({ name: `note${i}.txt`, mimeType: 'text/plain', buffer: Buffer.from(`note ${i}`) }));
  await page.getByLabel('Attach files').setInputFiles(many);
  await expect(page.getByTestId('pending-attachment')).toHaveCount(10);
  await expect(page.getByRole('alert')).toContainText('at most 10 files; 2 more were left out');
  expect((await control('/requests')).requests).toEqual([]);
});

test('the theme follows the system until chosen, and the choice survives a reload', async ({ page }) => {
  await page.emulateMedia({ colorScheme: 'light' });
  await openChat(page);
  const toggle = page.getByRole('button', { name: 'Dark theme' });
  await expect(toggle).toHaveAttribute('aria-pressed', 'false');
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const light = await background();
  await toggle.click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect(toggle).toHaveAttribute('aria-pressed', 'true');
  expect(await background()).not.toBe(light);
  await page.reload();
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect(page.getByRole('button', { name: 'Dark theme' })).toHaveAttribute('aria-pressed', 'true');
});

test('each attachment shows its upload progress, then processing, cleared when ACTIVE', async ({ page }) => {
  await openChat(page);
  await control('/requests', undefined, 'DELETE');
  // Record every progress bar the page shows, as it changes.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as any).__progress = seen;
    new MutationObserver(() => {
      for (const bar of document.querySelectorAll('article progress')) {
        seen.push(`${bar.getAttribute('aria-label')}=${bar.getAttribute('aria-valuenow')}`);
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
  // A video is processed (three seconds in the built-in emulator, as Gemini processes videos);
  // a small PDF is ACTIVE in the answer to its last chunk already.
  const video = { name: 'clip.mp4', mimeType: 'video/mp4', buffer: Buffer.alloc(6 * 1024 * 1024, 'parley ') };
  const pdf = { name: 'report-3-pages.pdf', mimeType: 'application/pdf', buffer: readFileSync(fixture('report-3-pages.pdf')) };
  await page.getByLabel('Attach files').setInputFiles([video, pdf]);
  await send(page, 'two files');
  const user = page.locator('article[data-role="user"]');
  await expect(user.getByRole('progressbar', { name: 'Processing clip.mp4' })).toBeVisible();
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done', { timeout: 30_000 });
  await expect(user.getByRole('progressbar')).toHaveCount(0);
  const seen: string[] = await page.evaluate(() => (window as any).__progress);
  expect(seen.some((s) => s.startsWith('Uploading clip.mp4='))).toBe(true);
  expect(seen).toContain('Processing clip.mp4=100');
  const percents = seen.filter((s) => s.startsWith('Uploading clip.mp4=')).map((s) => Number(s.split('=')[1]));
  expect(percents.every((p) => p >= 0 && p <= 100)).toBe(true);
  // Only the video was asked after (files.get until ACTIVE); the PDF never was.
  const { requests } = await control('/requests');
  const polled = new Set((requests as { method: string; path: string }[]).filter((r) => r.method === 'GET' && /\/files\/[^/]+$/.test(r.path)).map((r) => r.path));
  expect(polled.size).toBe(1);
});
