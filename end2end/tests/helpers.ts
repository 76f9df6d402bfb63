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

/** Calls the built-in emulator's control surface (faults, scripted answers, request log). */
export async function control(path: string, body?: unknown, method = body === undefined ? 'GET' : 'POST') {
  const api = await request.newContext();
  const response = await api.fetch(EMULATOR_CONTROL + path, { method, data: body });
  expect(response.ok(), `${method} ${path}`).toBe(true);
  const json = await response.json();
  await api.dispose();
  return json;
}

/** The generate requests the emulator received, oldest first. */
export async function generateRequests() {
  const { requests } = await control('/requests');
  return (requests as { path: string; json: any }[]).filter((r) => r.path.includes('GenerateContent'));
}
