import { test, expect } from './base';
import { control, fixture, openChat, sha12 } from './helpers';

const photo = fixture('photo-3000x2000.jpg');
const pdf = fixture('report-3-pages.pdf');

test('asks about a photograph and a PDF end to end', async ({ page }) => {
  await openChat(page);
  await expect(page).toHaveTitle(/Parley/);
  await expect(page.getByText('Offline demo')).toBeVisible();

  const send = page.getByRole('button', { name: 'Send' });
  await expect(send).toBeDisabled();

  await page.getByLabel('Attach files').setInputFiles([photo, pdf]);
  const pending = page.getByTestId('pending-attachment');
  await expect(pending).toHaveCount(2);
  await expect(pending.filter({ hasText: 'report-3-pages.pdf' })).toContainText('304 KB');
  // The composer shows the photo's preview once it is made.
  await expect(pending.filter({ hasText: 'photo-3000x2000.jpg' }).locator('img')).toBeVisible();
  await expect(send).toBeEnabled();

  await page.getByRole('textbox', { name: 'Message' }).fill('What are these two files?');
  // Small files are ACTIVE as soon as they are uploaded (as on Gemini), so the answer could
  // finish before the typing indicator is looked for: the emulator holds it back two seconds.
  await control('/faults', { route: 'generate', kind: 'hang', hang_for: '2s' });

  // Click Send and time, in the page, until the pending bubble shows a decoded preview.
  const elapsed = await page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        const button = [...document.querySelectorAll('button')].find((b) => b.textContent?.trim() === 'Send')!;
        const t0 = performance.now();
        const check = () => {
          const img = document.querySelector<HTMLImageElement>(
            '[role="log"] article[data-role="user"][data-status="pending"] img[data-testid="attachment-preview"]',
          );
          if (img && img.complete && img.naturalWidth > 0) resolve(performance.now() - t0);
          else requestAnimationFrame(check);
        };
        button.click();
        check();
      }),
  );
  console.log(`Send → pending bubble with preview: ${elapsed.toFixed(1)} ms`);

  const log = page.getByRole('log', { name: 'Conversation' });
  const mine = log.locator('article[data-role="user"]');
  const preview = mine.getByTestId('attachment-preview');
  const [w, h] = await preview.evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight]);
  expect(Math.max(w, h)).toBe(720);
  expect(w).toBeLessThanOrEqual(720);
  expect(h).toBeLessThanOrEqual(720);
  expect(await preview.getAttribute('src')).toMatch(/^data:image\/jpeg;base64,/);
  await expect(mine.getByTestId('attachment-chip')).toContainText('report-3-pages.pdf');
  await expect(mine.getByTestId('attachment-chip')).toContainText('304 KB');
  await expect(page.getByRole('textbox', { name: 'Message' })).toHaveValue('');

  await expect(page.getByRole('status').filter({ hasText: 'is typing' })).toBeVisible();

  const answer = log.locator('article[data-role="model"]');
  await expect(answer).toHaveAttribute('data-status', 'done', { timeout: 30_000 });
  await expect(answer).toContainText(`SHA-256 ${sha12(photo)}`);
  await expect(answer).toContainText('3000×2000 px');
  await expect(answer).toContainText(`SHA-256 ${sha12(pdf)}`);
  await expect(answer).toContainText('3 pages');
  await expect(answer).toContainText('What are these two files?');
  // Under the answer, the prompt's tokens by kind, as Gemini reports them: "What are these
  // two files?" is 7 text tokens, the photo 258, the three pages 3 × 258.
  await expect(answer.locator('.usage')).toHaveText(/^1,039 tokens in \(7 text, 258 image, 774 PDF\) · [\d,]+ out/);
  await expect(mine).toHaveAttribute('data-status', 'sent');
  await expect(page.getByRole('status').filter({ hasText: 'is typing' })).toHaveCount(0);
});

test('the answer streams in several steps', async ({ page }) => {
  await openChat(page);
  await page.getByRole('textbox', { name: 'Message' }).fill('Hello there');
  await page.getByRole('button', { name: 'Send' }).click();
  const answer = page.locator('article[data-role="model"]');
  await expect(answer).toHaveAttribute('data-status', 'streaming');
  await expect(answer).toHaveAttribute('data-status', 'done');
  await expect(answer).toContainText('I received no files.');
});

test('Enter sends and Shift+Enter adds a line', async ({ page }) => {
  await openChat(page);
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill('first line');
  await box.press('Shift+Enter');
  await box.pressSequentially('second line');
  await expect(box).toHaveValue('first line\nsecond line');
  await box.press('Enter');
  await expect(page.locator('article[data-role="user"]')).toContainText('first line\nsecond line');
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done');
});

test('a pending attachment can be removed before sending', async ({ page }) => {
  await openChat(page);
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await expect(page.getByTestId('pending-attachment')).toHaveCount(1);
  await page.getByRole('button', { name: 'Remove report-3-pages.pdf' }).click();
  await expect(page.getByTestId('pending-attachment')).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Send' })).toBeDisabled();
});

test('a failed upload shows an alert with Retry, Retry succeeds, and the chat stays usable', async ({ page }) => {
  await openChat(page);
  // Gemini refuses the upload with a 429 whose retryDelay is longer than Parley waits.
  await control('/faults', { route: 'start', kind: 'rate_limited', retry_delay: '120s' });
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await page.getByRole('textbox', { name: 'Message' }).fill('Open this');
  await page.getByRole('button', { name: 'Send' }).click();
  const failed = page.locator('article[data-role="user"]');
  await expect(failed).toHaveAttribute('data-status', 'error');
  const alert = failed.getByRole('alert');
  await expect(alert).toContainText('report-3-pages.pdf');
  await expect(alert).toContainText('Gemini is busy right now');
  await expect(alert).not.toContainText('{');
  await expect(alert.getByRole('button', { name: 'Retry' })).toBeVisible();
  await expect(page.getByRole('status').filter({ hasText: 'is typing' })).toHaveCount(0);

  // Retry goes through now, without duplicating the message.
  await alert.getByRole('button', { name: 'Retry' }).click();
  await expect(page.locator('article[data-role="model"]')).toContainText(`SHA-256 ${sha12(pdf)}`);
  await expect(failed).toHaveAttribute('data-status', 'sent');
  await expect(page.locator('article[data-role="user"]')).toHaveCount(1);

  await page.getByRole('textbox', { name: 'Message' }).fill('Just text then');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.locator('article[data-role="model"]').last()).toHaveAttribute('data-status', 'done');
  await expect(page.locator('article[data-role="model"]').last()).toContainText('Just text then');
});

test('what is typed and attached before the page hydrates is kept', async ({ page }) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/pkg/parley.wasm', async (route) => {
    await gate;
    await route.continue();
  });
  await page.goto('/', { waitUntil: 'domcontentloaded' });
  await page.getByRole('textbox', { name: 'Message' }).fill('typed early');
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  release();
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  await expect(page.getByTestId('pending-attachment')).toContainText('report-3-pages.pdf');
  await expect(page.getByRole('textbox', { name: 'Message' })).toHaveValue('typed early');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.locator('article[data-role="model"]')).toContainText(`SHA-256 ${sha12(pdf)}`);
});
