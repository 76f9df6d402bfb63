import type { ChildProcess } from 'node:child_process';
import { test, expect } from './base';
import { control, fixture, openChat, savedExports, send, sha12, startParley, waitUp } from './helpers';

// Its own parley (built-in emulator, control surface), started and killed by the test.
const URL = 'http://127.0.0.1:3408';
const CONTROL = 'http://127.0.0.1:3409/_emulator';
const up = () => waitUp(URL);
const start = (env: Record<string, string> = {}) => startParley(3408, 3409, env);

test('a server restart in the middle of an answer loses nothing, and Retry works', async ({ page }) => {
  const pdf = fixture('report-3-pages.pdf');
  let server = start();
  try {
    await up();
    await openChat(page, URL);
    await page.getByLabel('Attach files').setInputFiles([pdf]);
    await send(page, 'first');
    await expect(page.locator('article[data-role="model"]').last()).toHaveAttribute('data-status', 'done');

    // The next answer streams slowly; the server dies in the middle of it.
    await control('/faults', { route: 'generate', kind: 'slow_stream', chunk_delay: '1s' }, 'POST', CONTROL);
    await send(page, 'second');
    await expect(page.locator('article[data-role="model"]')).toHaveCount(2);
    const answer = page.locator('article[data-role="model"]').last();
    await expect(answer).toHaveAttribute('data-status', 'streaming');
    await expect(answer).toContainText(/\w/); // the first words arrived
    server.kill('SIGKILL');
    await expect(answer).toHaveAttribute('data-status', 'error');
    await expect(answer.getByRole('alert')).toBeVisible();
    // Nothing is lost: both questions and the attachment are still there.
    await expect(page.locator('article[data-role="user"]')).toHaveCount(2);
    await expect(page.locator('article[data-role="user"]').first()).toContainText('report-3-pages.pdf');
    await expect(page.locator('article[data-role="user"]').last()).toContainText('second');

    // Back up (same data directory: same session key, registry and retained originals; the
    // built-in emulator starts empty, so the File is gone there and is uploaded again).
    server = start();
    await up();
    await answer.getByRole('alert').getByRole('button', { name: 'Retry' }).click();
    const retried = page.locator('article[data-role="model"]').last();
    await expect(retried).toHaveAttribute('data-status', 'done');
    await expect(retried).toContainText('You asked: “second”');
    await expect(retried).toContainText(`SHA-256 ${sha12(pdf)}`);
    await expect(page.locator('article[data-role="user"]').first().getByText('expired content')).toHaveCount(0);

    // And after a reload (once the answer is saved), the whole conversation is still there.
    await expect.poll(async () => (await savedExports(page)).some((e) => e.includes('You asked: “second”'))).toBe(true);
    await page.reload();
    await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
    await expect(page.locator('article[data-role="user"]')).toHaveCount(2);
    await expect(page.locator('article[data-role="model"]').last()).toContainText('You asked: “second”');
  } finally {
    server.kill('SIGKILL');
  }
});

/** Resolves with the exit code once `server` has exited. */
const exited = (server: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (server.exitCode !== null) resolve(server.exitCode);
    else server.once('exit', (code) => resolve(code));
  });

test('SIGTERM lets an answer in flight finish, then the server stops', async ({ page }) => {
  const server = start();
  try {
    await up();
    await openChat(page, URL);
    await control('/faults', { route: 'generate', kind: 'slow_stream', chunk_delay: '400ms' }, 'POST', CONTROL);
    await send(page, 'finish me please');
    const answer = page.locator('article[data-role="model"]').last();
    await expect(answer).toHaveAttribute('data-status', 'streaming');
    const stopped = exited(server);
    server.kill('SIGTERM');
    // The answer streams to its end on the stopping server.
    await expect(answer).toHaveAttribute('data-status', 'done');
    await expect(answer).toContainText('You asked: “finish me please”');
    await expect(answer.getByRole('alert')).toHaveCount(0);
    expect(await stopped).toBe(0);
    await expect(fetch(URL)).rejects.toThrow();
  } finally {
    server.kill('SIGKILL');
  }
});

test('past the shutdown grace an answer in flight is cut off; the message stays and Retry works', async ({ page }) => {
  let server = start({ PARLEY_SHUTDOWN_GRACE: '1s' });
  try {
    await up();
    await openChat(page, URL);
    await control('/faults', { route: 'generate', kind: 'hang', hang_for: '1h' }, 'POST', CONTROL);
    await send(page, 'never answered');
    await expect(page.getByRole('status').filter({ hasText: 'is typing' })).toBeVisible();
    const stopped = exited(server);
    const signalled = Date.now();
    server.kill('SIGTERM');
    expect(await stopped).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(10_000);
    const alert = page.getByRole('alert');
    await expect(alert).toBeVisible();
    await expect(page.locator('article[data-role="user"]')).toHaveCount(1);
    await expect(page.locator('article[data-role="user"]')).toContainText('never answered');

    server = start({ PARLEY_SHUTDOWN_GRACE: '1s' });
    await up();
    await alert.getByRole('button', { name: 'Retry' }).click();
    const answer = page.locator('article[data-role="model"]').last();
    await expect(answer).toHaveAttribute('data-status', 'done');
    await expect(answer).toContainText('You asked: “never answered”');
    await expect(page.locator('article[data-role="user"]')).toHaveCount(1);
  } finally {
    server.kill('SIGKILL');
  }
});
