import { test, expect } from './base';
import { OFFLINE_URL } from '../playwright.config';

/**
 * The first visit and a repeat visit, measured in Debian's chromium through the Chrome
 * DevTools Protocol: bytes on the wire until the page is interactive (`data-hydrated`) and how
 * long that took, wired and on Chrome's "Fast 4G" profile with a 4× slower CPU. Prints figures;
 * asserts only what must hold whatever the build: hashed assets are cached for good, the HTML
 * is revalidated, static files start no session, and a repeat visit fetches (almost) nothing.
 *
 * The suite runs it on the debug build; `scripts/bench-first-visit.sh` runs it against a
 * release build (precompressed assets) with `PARLEY_FIGURES_URL`.
 */
const SITE = process.env.PARLEY_FIGURES_URL ?? OFFLINE_URL;

/** DevTools' "Fast 4G" preset (9 Mbps down, 1.5 Mbps up, 165 ms RTT; Chrome's own factors). */
const FAST_4G = {
  offline: false,
  downloadThroughput: (9 * 1000 * 1000) / 8 * 0.9,
  uploadThroughput: (1.5 * 1000 * 1000) / 8 * 0.9,
  latency: 60 * 2.75,
};

type Visit = {
  bytes: number;
  ms: number;
  requests: number;
  encodings: Record<string, string>;
  timeline: string;
};

test.describe.configure({ mode: 'serial' });

async function visit(page: import('@playwright/test').Page, throttled: boolean): Promise<Visit> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  if (throttled) {
    await cdp.send('Network.emulateNetworkConditions', FAST_4G);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
  }
  let bytes = 0;
  let requests = 0;
  const urls = new Map<string, string>();
  const encodings: Record<string, string> = {};
  cdp.on('Network.responseReceived', (e) => {
    urls.set(e.requestId, e.response.url);
    const encoding = Object.entries(e.response.headers).find(([k]) => k.toLowerCase() === 'content-encoding')?.[1];
    encodings[new URL(e.response.url).pathname] = encoding ?? 'identity';
  });
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength;
    requests += 1;
  });
  const started = Date.now();
  await page.goto(SITE);
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached({ timeout: 30_000 });
  const ms = Date.now() - started;
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 });
  await cdp.detach();
  return { bytes, ms, requests, encodings, timeline: await timeline(page) };
}

/**
 * Where the time went, from the page's own Resource Timing: for the document and each
 * asset, when its connection began (`c`, only for a new one), its request went (`q`) and its
 * last byte arrived (`e`), in ms since navigation started.
 */
async function timeline(page: import('@playwright/test').Page): Promise<string> {
  return page.evaluate(() => {
    const entries = [
      ...performance.getEntriesByType('navigation'),
      ...performance.getEntriesByType('resource'),
    ] as PerformanceResourceTiming[];
    return entries
      .map((e) => {
        const name = e.entryType === 'navigation' ? 'html' : new URL(e.name).pathname.split('.').pop();
        const connect = e.connectEnd > e.connectStart ? ` c${Math.round(e.connectStart)}` : '';
        return `${name}${connect} q${Math.round(e.requestStart)} e${Math.round(e.responseEnd)}`;
      })
      .join(', ');
  });
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

test('figures: the first visit and a repeat visit, wired and on Fast 4G with a 4× slower CPU', async ({ browser }) => {
  for (const throttled of [false, true]) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const first = await visit(page, throttled);
    const repeat = await visit(page, throttled);
    const profile = throttled ? 'Fast 4G, CPU 4× slower' : 'wired';
    console.log(
      `first visit (${profile}): ${kib(first.bytes)} in ${first.requests} responses before hydration, hydrated after ${first.ms} ms; ` +
        `repeat visit: ${kib(repeat.bytes)} in ${repeat.requests} responses, hydrated after ${repeat.ms} ms`,
    );
    console.log(`first visit (${profile}) timeline: ${first.timeline}`);
    if (!throttled) console.log(`encodings: ${JSON.stringify(first.encodings)}`);
    expect(repeat.bytes, 'a repeat visit fetches much less').toBeLessThan(first.bytes / 4);
    await context.close();
  }
});

test('hashed assets are immutable, the HTML is revalidated, static files start no session', async ({ page, request }) => {
  const assets: string[] = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/pkg/')) assets.push(r.url());
  });
  const html = await page.goto(SITE);
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  expect(html!.headers()['cache-control']).toBe('no-cache, private');
  // The chat turn's module comes once the page is interactive, before anything is sent.
  await expect.poll(() => assets.some((u) => u.includes('/split_turn.')), 'the turn module, preloaded').toBe(true);
  expect(assets.length, 'the js, wasm and css, the split loader and the turn module').toBeGreaterThanOrEqual(5);
  for (const url of assets) {
    // Hashed names: parley.<hash>.js, .wasm, .css, and the modules fetched after hydration
    // (__wasm_split.<hash>.js, split_<name>.<hash>.wasm, chunk_<n>.<hash>.wasm).
    expect(new URL(url).pathname, url).toMatch(
      /^\/pkg\/(parley\.[A-Za-z0-9_-]{8,}\.(js|wasm|css)|__wasm_split\.[A-Za-z0-9_-]{8,}\.js|(split_[a-z_]+|chunk_\d+)\.[A-Za-z0-9_-]{8,}\.wasm)$/,
    );
    const res = await request.get(url, { headers: { 'accept-encoding': 'br, gzip' } });
    expect(res.status(), url).toBe(200);
    expect(res.headers()['cache-control'], url).toBe('public, max-age=31536000, immutable');
    expect(res.headers()['set-cookie'], `${url} starts no session`).toBeUndefined();
  }
  const worker = await request.get(`${SITE}/hash-worker.js`);
  expect(worker.headers()['cache-control']).toBe('public, max-age=3600');
  expect(worker.headers()['set-cookie']).toBeUndefined();
});
