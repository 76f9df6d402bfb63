import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, request, type Browser, type Page } from '@playwright/test';
import { ACCOUNTS_URL, EMULATOR_CONTROL, SITE_ENV, logOf } from '../playwright.config';

export const fixture = (name: string) => path.join(__dirname, '..', 'fixtures', name);

/** The first 12 hex digits of a file's SHA-256, as the emulator quotes them. */
export const sha12 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 12);

/** Opens the page and waits until the wasm has hydrated it. */
export async function openChat(page: Page, url = '/') {
  await page.goto(url);
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
}

/**
 * Calls a built-in emulator's control surface (faults, clock, scripted answers, request log):
 * by default that of the parley at OFFLINE_URL.
 */
export async function control(path: string, body?: unknown, method = body === undefined ? 'GET' : 'POST', base = EMULATOR_CONTROL) {
  const api = await request.newContext();
  const response = await api.fetch(base + path, { method, data: body });
  expect(response.ok(), `${method} ${path}`).toBe(true);
  const json = await response.json();
  await api.dispose();
  return json;
}

type Logged = { path: string; method: string; upload_command: string | null; json: any };

/** The generate requests the emulator received, oldest first. */
export async function generateRequests(base = EMULATOR_CONTROL) {
  const { requests } = await control('/requests', undefined, 'GET', base);
  return (requests as Logged[]).filter((r) => r.path.includes('GenerateContent'));
}

/** The resumable uploads the emulator saw started, oldest first. */
export async function uploadStarts(base = EMULATOR_CONTROL) {
  const { requests } = await control('/requests', undefined, 'GET', base);
  return (requests as Logged[]).filter((r) => r.upload_command === 'start');
}

/** The `fileData.fileUri`s of a logged generate request. */
export function fileUris(call: { json: any }): string[] {
  return (call.json.contents as any[]).flatMap((c) => c.parts).filter((p) => p.fileData).map((p) => p.fileData.fileUri);
}

/**
 * Starts a parley of the test's own from the debug build, on the built-in emulator with its
 * control surface (`http://127.0.0.1:{emulatorPort}/_emulator`), data in
 * `target/e2e-data/{port}`, log appended to `logOf(port)`; `env` adds or overrides settings.
 * The test stops it.
 */
export function startParley(port: number, emulatorPort: number, env: Record<string, string> = {}): ChildProcess {
  const root = path.join(__dirname, '..', '..');
  mkdirSync(path.join(root, 'target', 'e2e-data'), { recursive: true });
  const log = openSync(path.join(root, logOf(port)), 'a');
  return spawn('target/debug/parley', [], {
    cwd: root,
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      ...SITE_ENV,
      PARLEY_LISTEN: `127.0.0.1:${port}`,
      PARLEY_DATA_DIR: `target/e2e-data/${port}`,
      GEMINI_API_KEY: '',
      PARLEY_EMULATOR_LISTEN: `127.0.0.1:${emulatorPort}`,
      PARLEY_EMULATOR_CONTROL: 'true',
      ...env,
    },
  });
}

/** Waits (up to 30 s) until `url` answers. */
export async function waitUp(url: string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Types `text` into the message box and presses Send. */
export async function send(page: Page, text: string) {
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

/** The export texts of the conversations the page has saved in IndexedDB (`parley` / `conversations`). */
export async function savedExports(page: Page): Promise<string[]> {
  return page.evaluate(
    () =>
      new Promise<string[]>((resolve, reject) => {
        const open = indexedDB.open('parley');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains('conversations')) return resolve([]);
          const all = db.transaction('conversations').objectStore('conversations').getAll();
          all.onsuccess = () => resolve(all.result.map((r: { export: string }) => r.export));
          all.onerror = () => reject(all.error);
        };
      }),
  );
}

/** Signs `page` in at the test provider as `login` (any login works), through the page's own buttons. */
export async function signIn(page: Page, login: string) {
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('link', { name: 'Continue with Corp ID' }).click();
  // The provider's own forms: any login, then consent.
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${ACCOUNTS_URL}/`);
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  await expect(page.getByRole('button', { name: 'Account', exact: true })).toBeVisible();
}

/** A new browser context (a device of its own) with the accounts site open. */
export async function device(browser: Browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await openChat(page, ACCOUNTS_URL);
  return { context, page };
}
