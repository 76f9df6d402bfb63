import type { ChildProcess } from 'node:child_process';
import { test, expect } from './base';
import { control, fixture, generateRequests, openChat, send, sha12, startParley, uploadStarts, waitUp } from './helpers';

// Faults upstream, through the browser: Gemini failing past the retries (429, 500, 503), a
// connection dropped mid-answer and mid-upload, an answer that hangs. Nothing the person sent
// is lost, the page says what happened, and Retry works. Its own parley (one retry, 2 s of
// silence allowed) so that failures surface in seconds.
const URL = 'http://127.0.0.1:3410';
const CONTROL = 'http://127.0.0.1:3411/_emulator';
const pdf = fixture('report-3-pages.pdf');
let server: ChildProcess;

test.beforeAll(async () => {
  server = startParley(3410, 3411, { PARLEY_UPSTREAM_RETRIES: '1', PARLEY_UPSTREAM_READ_TIMEOUT: '2s', PARLEY_EMULATOR_PROCESSING: '0s' });
  await waitUp(URL);
});
test.afterAll(() => {
  server.kill('SIGKILL');
});
test.beforeEach(async () => {
  await control('/faults', undefined, 'DELETE', CONTROL);
  await control('/requests', undefined, 'DELETE', CONTROL);
});

const failures = [
  { kind: 'rate_limited', retry_delay: '0.2s', says: 'Gemini is busy right now' },
  { kind: 'internal', says: 'Gemini could not answer (500)' },
  { kind: 'unavailable', says: 'Gemini could not answer (503)' },
  { kind: 'hang', hang_for: '1h', says: 'could not reach Gemini' },
];

for (const { says, ...fault } of failures) {
  test(`Gemini failing with ${fault.kind} past the retry: the message and file stay, an alert says so, Retry answers`, async ({ page }) => {
    await openChat(page, URL);
    await page.getByLabel('Attach files').setInputFiles([pdf]);
    // The first attempt and the one retry both fail.
    await control('/faults', { route: 'generate', count: 2, ...fault }, 'POST', CONTROL);
    await send(page, `question under ${fault.kind}`);
    const alert = page.getByRole('alert');
    await expect(alert).toContainText(says, { timeout: 30_000 });
    await expect(alert).not.toContainText('{');
    await expect(page.getByRole('status').filter({ hasText: 'is typing' })).toHaveCount(0);
    expect(await generateRequests(CONTROL)).toHaveLength(2);
    const question = page.locator('article[data-role="user"]');
    await expect(question).toHaveCount(1);
    await expect(question).toContainText(`question under ${fault.kind}`);
    await expect(question).toContainText('report-3-pages.pdf');

    await alert.getByRole('button', { name: 'Retry' }).click();
    const answer = page.locator('article[data-role="model"]').last();
    await expect(answer).toHaveAttribute('data-status', 'done');
    await expect(answer).toContainText(`You asked: “question under ${fault.kind}”`);
    await expect(answer).toContainText(`SHA-256 ${sha12(pdf)}`);
    await expect(page.getByRole('alert')).toHaveCount(0);
    await expect(page.locator('article[data-role="user"]')).toHaveCount(1);
    expect(await uploadStarts(CONTROL), 'the file was uploaded once, not again on Retry').toHaveLength(1);
  });
}

test('a fault that clears within the retry is never seen', async ({ page }) => {
  await openChat(page, URL);
  await control('/faults', { route: 'generate', kind: 'unavailable', count: 1 }, 'POST', CONTROL);
  await send(page, 'once more');
  const answer = page.locator('article[data-role="model"]').last();
  await expect(answer).toHaveAttribute('data-status', 'done');
  await expect(answer).toContainText('You asked: “once more”');
  await expect(page.getByRole('alert')).toHaveCount(0);
  expect(await generateRequests(CONTROL)).toHaveLength(2);
});

test('a connection dropped in the middle of an answer keeps what arrived and offers Retry', async ({ page }) => {
  await openChat(page, URL);
  // Once words have streamed, an answer is not retried behind the person's back.
  await control('/faults', { route: 'generate', kind: 'drop', count: 1 }, 'POST', CONTROL);
  await send(page, 'cut me off');
  const answer = page.locator('article[data-role="model"]').last();
  await expect(answer).toHaveAttribute('data-status', 'error', { timeout: 30_000 });
  await expect(answer.getByRole('alert')).toBeVisible();
  await expect(page.locator('article[data-role="user"]')).toContainText('cut me off');
  await answer.getByRole('alert').getByRole('button', { name: 'Retry' }).click();
  const retried = page.locator('article[data-role="model"]').last();
  await expect(retried).toHaveAttribute('data-status', 'done');
  await expect(retried).toContainText('You asked: “cut me off”');
  await expect(page.locator('article[data-role="model"]')).toHaveCount(1);
});

test('an upload whose connection drops mid-chunk is resumed where it stopped', async ({ page }) => {
  await openChat(page, URL);
  await control('/faults', { route: 'chunk', kind: 'drop', count: 1 }, 'POST', CONTROL);
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await send(page, 'resumed?');
  const answer = page.locator('article[data-role="model"]').last();
  await expect(answer).toHaveAttribute('data-status', 'done');
  await expect(answer).toContainText(`SHA-256 ${sha12(pdf)}`);
  await expect(page.getByRole('alert')).toHaveCount(0);
  const { requests } = await control('/requests', undefined, 'GET', CONTROL);
  const commands = (requests as { upload_command: string | null; fault: string | null }[])
    .filter((r) => r.upload_command)
    .map((r) => (r.fault ? `${r.upload_command} (${r.fault})` : r.upload_command));
  expect(commands).toEqual(['start', 'upload, finalize (drop)', 'query', 'upload, finalize']);
});

test('an upload cut off between the browser and the server fails visibly and Retry sends it again', async ({ page }) => {
  await openChat(page, URL);
  let cut = 0;
  await page.route('**/api/upload_file', async (route) => {
    if (cut++ === 0) await route.abort('connectionreset');
    else await route.continue();
  });
  await page.getByLabel('Attach files').setInputFiles([pdf]);
  await send(page, 'after the cut');
  const question = page.locator('article[data-role="user"]');
  await expect(question).toHaveAttribute('data-status', 'error');
  const alert = question.getByRole('alert');
  await expect(alert).toContainText('report-3-pages.pdf');
  expect(await uploadStarts(CONTROL), 'nothing reached Gemini').toHaveLength(0);

  await alert.getByRole('button', { name: 'Retry' }).click();
  const answer = page.locator('article[data-role="model"]').last();
  await expect(answer).toHaveAttribute('data-status', 'done');
  await expect(answer).toContainText(`SHA-256 ${sha12(pdf)}`);
  await expect(question).toHaveAttribute('data-status', 'sent');
  expect(cut).toBe(2);
});
