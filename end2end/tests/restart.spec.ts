import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { test, expect, type Page } from '@playwright/test';
import { control, fixture, openChat, sha12 } from './helpers';

// Its own parley (built-in emulator, control surface), started and killed by the test.
const URL = 'http://127.0.0.1:3408';
const CONTROL = 'http://127.0.0.1:3409/_emulator';
const root = path.join(__dirname, '..', '..');

function startParley(): ChildProcess {
  return spawn('target/debug/parley', [], {
    cwd: root,
    stdio: 'ignore',
    env: {
      ...process.env,
      LEPTOS_SITE_ROOT: 'target/site',
      PARLEY_LISTEN: '127.0.0.1:3408',
      PARLEY_DATA_DIR: 'target/e2e-data/3408',
      GEMINI_API_KEY: '',
      PARLEY_EMULATOR_LISTEN: '127.0.0.1:3409',
      PARLEY_EMULATOR_CONTROL: 'true',
      PARLEY_LOG: 'warn',
    },
  });
}

async function up() {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(URL)).ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error('parley did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function send(page: Page, text: string) {
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

test('a server restart in the middle of an answer loses nothing, and Retry works', async ({ page }) => {
  const pdf = fixture('report-3-pages.pdf');
  let server = startParley();
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
    server = startParley();
    await up();
    await answer.getByRole('alert').getByRole('button', { name: 'Retry' }).click();
    const retried = page.locator('article[data-role="model"]').last();
    await expect(retried).toHaveAttribute('data-status', 'done');
    await expect(retried).toContainText('You asked: “second”');
    await expect(retried).toContainText(`SHA-256 ${sha12(pdf)}`);
    await expect(page.locator('article[data-role="user"]').first().getByText('expired content')).toHaveCount(0);

    // And after a reload, the whole conversation is still there.
    await page.reload();
    await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
    await expect(page.locator('article[data-role="user"]')).toHaveCount(2);
    await expect(page.locator('article[data-role="model"]').last()).toContainText('You asked: “second”');
  } finally {
    server.kill('SIGKILL');
  }
});
