import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { test, expect } from './base';
import { SECRET_KEY } from '../playwright.config';
import { control, fixture, openChat, send, sha12, startParley, uploadStarts, waitUp } from './helpers';

/**
 * Two replicas behind one origin: a small reverse proxy sends each request to the next of two
 * `parley` processes in turn (no sticky sessions), both on the PostgreSQL database and the S3
 * bucket `scripts/test.sh` starts, both talking to one standalone emulator. A person attaches,
 * sends, and — after the File expired — sends again; everything works whichever replica answers.
 */
const PROXY = 'http://127.0.0.1:3423';
const REPLICAS = [3421, 3422];
const EMULATOR = 'http://127.0.0.1:3420';
const CONTROL = `${EMULATOR}/_emulator`;

const database = process.env.PARLEY_TEST_DATABASE_URL;
const bucket = process.env.PARLEY_TEST_S3_BUCKET;
if ((!database || !bucket) && process.env.PARLEY_TEST_REQUIRE_SERVICES) {
  throw new Error('PARLEY_TEST_DATABASE_URL and PARLEY_TEST_S3_BUCKET must be set');
}

/** Server-function calls each replica answered, by port. */
const served = new Map<number, string[]>();

/** Forwards each request to the next replica, as a load balancer without affinity would. */
function alternatingProxy() {
  let next = 0;
  return http.createServer((req, res) => {
    const port = REPLICAS[next++ % REPLICAS.length];
    if (req.url?.startsWith('/api/')) served.set(port, [...(served.get(port) ?? []), req.url]);
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '127.0.0.1', 'x-forwarded-proto': 'http' },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
}

test.skip(!database || !bucket, 'needs the PostgreSQL and S3 servers scripts/test.sh starts');

test('through one origin in front of two replicas: attach, send, expire, send again', async ({ page }) => {
  test.setTimeout(120_000);
  const root = path.join(__dirname, '..', '..');
  const emulator: ChildProcess = spawn(
    'target/debug/gemini-emulator',
    ['--listen', '127.0.0.1:3420', '--api-key', SECRET_KEY, '--control', '--processing-ms', '200', '--chunk-delay-ms', '5'],
    { cwd: root, stdio: 'ignore' },
  );
  const shared = {
    GEMINI_API_KEY: SECRET_KEY,
    GEMINI_BASE_URL: EMULATOR,
    PARLEY_DATABASE_URL: database!,
    PARLEY_ORIGINALS_URL: `s3://${bucket}/e2e-replicas-${Date.now()}`,
    PARLEY_TRUST_PROXY: 'true',
  };
  const replicas = REPLICAS.map((port) => startParley(port, 0, { ...shared, PARLEY_EMULATOR_CONTROL: 'false' }));
  const proxy = alternatingProxy();
  try {
    await waitUp(`${EMULATOR}/_emulator/clock`);
    await Promise.all(REPLICAS.map((port) => waitUp(`http://127.0.0.1:${port}/readyz`)));
    await new Promise<void>((resolve) => proxy.listen(3423, '127.0.0.1', resolve));

    const pdf = fixture('report-3-pages.pdf');
    await openChat(page, PROXY);
    await page.getByLabel('Attach files').setInputFiles([pdf]);
    await send(page, 'read this');
    const first = page.locator('article[data-role="model"]').last();
    await expect(first).toHaveAttribute('data-status', 'done');
    await expect(first).toContainText(`SHA-256 ${sha12(pdf)}`);
    expect(await uploadStarts(CONTROL)).toHaveLength(1);

    // Two days later by Gemini's clock the File is gone; whichever replica answers uploads the
    // original again from S3 (the other one kept nothing of it on its own disk).
    await control('/clock', { by: '49h' }, 'POST', CONTROL);
    for (const question of ['still there?', 'and now?']) {
      await send(page, question);
      const answer = page.locator('article[data-role="model"]').last();
      await expect(answer).toHaveAttribute('data-status', 'done');
      await expect(answer).toContainText(`You asked: “${question}”`);
      await expect(answer).toContainText(`SHA-256 ${sha12(pdf)}`);
      await expect(answer).toContainText('3 pages');
    }
    await expect(page.locator('article[data-role="user"]').first().getByText('expired content')).toHaveCount(0);
    expect(await uploadStarts(CONTROL)).toHaveLength(2); // one re-upload, then the new File is used

    // Both replicas took part: the page's server-function calls went to each.
    for (const port of REPLICAS) expect(served.get(port)?.length ?? 0, `calls answered by ${port}`).toBeGreaterThan(0);
  } finally {
    proxy.close();
    for (const replica of replicas) replica.kill('SIGKILL');
    emulator.kill('SIGKILL');
  }
});
