import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, type Page } from '@playwright/test';

export const fixture = (name: string) => path.join(__dirname, '..', 'fixtures', name);

/** The first 12 hex digits of a file's SHA-256, as the emulator quotes them. */
export const sha12 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 12);

/** Opens the page and waits until the wasm has hydrated it. */
export async function openChat(page: Page, url = '/') {
  await page.goto(url);
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
}
