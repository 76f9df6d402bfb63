import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { test as playwright, expect, type Response } from '@playwright/test';
import { EMULATOR_KEY, OIDC_CLIENT_SECRET, SECRET_KEY, SESSION_SECRET } from '../playwright.config';

/**
 * The suite's `test`: Playwright's, with every response the browser receives in every test
 * (pages, assets, server functions, streamed answers, errors) scanned for what must never
 * leave the server — the keys Parley holds, its session-signing secret, and a resumable
 * upload's session URL (`upload_id=…`, a capability). A test that lets one through fails.
 * Each test's count of responses scanned is appended to `target/e2e-data/scanned.tsv`.
 */
export const SECRETS: { name: string; pattern: string | RegExp }[] = [
  { name: 'the Gemini API key', pattern: SECRET_KEY },
  { name: "the built-in emulator's key", pattern: EMULATOR_KEY },
  { name: 'the session secret', pattern: SESSION_SECRET },
  { name: "the OpenID client's secret", pattern: OIDC_CLIENT_SECRET },
  { name: 'an upload session URL', pattern: /upload_id=/ },
];

const SCANNED = path.join(__dirname, '..', '..', 'target', 'e2e-data', 'scanned.tsv');

/** What `response` (headers and body) gives away, as sentences. */
async function leaks(response: Response): Promise<string[]> {
  // A response whose page closed before its raw headers were read (a test that ends while an
  // answer still streams) is scanned on the headers Playwright already has.
  const headers = JSON.stringify(await response.allHeaders().catch(() => response.headers()));
  // Redirects and cut connections have no body; their headers are still scanned.
  const body = await response.body().then((b) => b.toString('latin1'), () => '');
  return SECRETS.filter(({ pattern }) => (typeof pattern === 'string' ? [headers, body].some((t) => t.includes(pattern)) : pattern.test(headers) || pattern.test(body))).map(
    ({ name }) => `${name} in ${response.request().method()} ${response.url()}`,
  );
}

export const test = playwright.extend<{ secretScan: void }>({
  secretScan: [
    async ({ context }, use, testInfo) => {
      const found: string[] = [];
      const scans: Promise<void>[] = [];
      context.on('response', (response) => {
        scans.push(leaks(response).then((l) => void found.push(...l)));
      });
      await use();
      // A response still open (a server killed on purpose) is not waited for forever.
      const settled = await Promise.race([Promise.all(scans).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5_000))]);
      mkdirSync(path.dirname(SCANNED), { recursive: true });
      appendFileSync(SCANNED, `${testInfo.titlePath.slice(1).join(' › ')}\t${scans.length}\t${settled ? 'all read' : 'some still open'}\n`);
      expect(found, 'secrets in responses').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
