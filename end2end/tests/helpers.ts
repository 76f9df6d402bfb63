import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, request, type Page } from '@playwright/test';
import { EMULATOR_CONTROL } from '../playwright.config';

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
