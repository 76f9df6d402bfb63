import { defineConfig } from '@playwright/test';

/**
 * The suite starts its own servers from the debug build (`cargo leptos build --split`):
 *  - parley on the built-in emulator (no key)            http://127.0.0.1:3400
 *    with that emulator's control surface                 http://127.0.0.1:3404/_emulator
 *  - a standalone gemini-emulator that demands a key      http://127.0.0.1:3401
 *    with its control surface                             http://127.0.0.1:3401/_emulator
 *  - parley with GEMINI_API_KEY, pointed at that emulator http://127.0.0.1:3402
 *  - parley on the built-in emulator, retention off,    http://127.0.0.1:3406
 *    logging JSON
 *    with that emulator's control surface                 http://127.0.0.1:3407/_emulator
 *  - an OpenID provider (oidc-provider, any login)        http://127.0.0.1:3450
 *  - parley with that provider as `corp` ("Corp ID")     http://127.0.0.1:3440
 *  (budgets.spec.ts starts its own parley with budgets    http://127.0.0.1:3460)
 * Browsers: Debian's chromium (Playwright's own download does not work here).
 *
 * With PARLEY_E2E_URL set, none of these is started: only the `@smoke` tests run, against that
 * site (`PARLEY_E2E_URL=https://chat.example.org npx playwright test --grep @smoke`).
 */
/** A deployment to smoke-test, instead of the suite's own servers. */
const TARGET = process.env.PARLEY_E2E_URL;
export const OFFLINE_URL = 'http://127.0.0.1:3400';
export const KEYED_URL = 'http://127.0.0.1:3402';
/** The control surface of the emulator behind `KEYED_URL` (faults for secrets.spec.ts). */
export const KEYED_CONTROL = 'http://127.0.0.1:3401/_emulator';
export const SECRET_KEY = 'parley-e2e-secret-Qx81vT3m';
/** Parley with sign-in (the OpenID provider below as `corp`). */
export const ACCOUNTS_URL = 'http://127.0.0.1:3440';
/** Parley with budgets (`budgets.spec.ts` starts it), signing in at the same provider. */
export const BUDGETS_URL = 'http://127.0.0.1:3460';
/** The OpenID provider (`end2end/oidc/provider.mjs`). */
export const PROVIDER_URL = 'http://127.0.0.1:3450';
/** Parley's client secret at that provider: never in a page, an asset or a response. */
export const OIDC_CLIENT_SECRET = 'parley-e2e-oidc-client-secret-Zt7';
/** The built-in emulator's key in every offline parley of the suite (`PARLEY_EMULATOR_API_KEY`). */
export const EMULATOR_KEY = 'parley-e2e-emulator-key-Jw42cZ9p';
/** Every parley's session-signing secret (`PARLEY_SESSION_SECRET`). */
export const SESSION_SECRET = 'parley-e2e-session-secret-0123456789abcdef';
/** Where every parley of the suite logs (one file per port), for secrets.spec.ts to scan. */
export const logOf = (port: number) => `target/e2e-data/parley-${port}.log`;
export const EMULATOR_CONTROL = 'http://127.0.0.1:3404/_emulator';
/** Parley without retained originals (`PARLEY_RETAIN_FOR=0`): expired Files become `expired content`. */
export const NO_RETAIN_URL = 'http://127.0.0.1:3406';
export const NO_RETAIN_CONTROL = 'http://127.0.0.1:3407/_emulator';

/** What every parley of the suite runs with (those `helpers.ts` `startParley` starts too). */
export const SITE_ENV = {
  LEPTOS_SITE_ROOT: 'target/site',
  PARLEY_LOG: 'info',
  PARLEY_SESSION_SECRET: SESSION_SECRET,
  PARLEY_EMULATOR_API_KEY: EMULATOR_KEY,
};
/** Runs parley with its log in `logOf(port)`. */
const parley = (port: number) => `mkdir -p target/e2e-data && exec target/debug/parley >${logOf(port)} 2>&1`;

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  grep: TARGET ? /@smoke/ : undefined,
  use: {
    baseURL: TARGET ?? OFFLINE_URL,
    browserName: 'chromium',
    headless: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
    trace: 'retain-on-failure',
  },
  // scripts/bench-first-visit.sh brings its own release server (PARLEY_FIGURES_URL).
  webServer: TARGET || process.env.PARLEY_FIGURES_URL ? [] : [
    {
      command: parley(3400),
      cwd: '..',
      url: OFFLINE_URL,
      env: {
        ...SITE_ENV,
        PARLEY_LISTEN: '127.0.0.1:3400',
        PARLEY_DATA_DIR: 'target/e2e-data/3400',
        GEMINI_API_KEY: '',
        PARLEY_EMULATOR_LISTEN: '127.0.0.1:3404',
        PARLEY_EMULATOR_CONTROL: 'true',
      },
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      command: `target/debug/gemini-emulator --listen 127.0.0.1:3401 --api-key ${SECRET_KEY} --control`,
      cwd: '..',
      url: 'http://127.0.0.1:3401/v1beta/files?key=' + SECRET_KEY,
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      // At debug level, for secrets.spec.ts to scan the most verbose log there is.
      command: parley(3402),
      cwd: '..',
      url: KEYED_URL,
      env: {
        ...SITE_ENV,
        PARLEY_LOG: 'debug',
        PARLEY_LISTEN: '127.0.0.1:3402',
        PARLEY_DATA_DIR: 'target/e2e-data/3402',
        GEMINI_API_KEY: SECRET_KEY,
        GEMINI_BASE_URL: 'http://127.0.0.1:3401',
      },
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      command: `node oidc/provider.mjs --port 3450 --clients '${JSON.stringify([{ client_id: 'parley', client_secret: OIDC_CLIENT_SECRET, redirect_uris: [`${ACCOUNTS_URL}/auth/callback/corp`, `${BUDGETS_URL}/auth/callback/corp`] }])}'`,
      url: `${PROVIDER_URL}/.well-known/openid-configuration`,
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      command: parley(3440),
      cwd: '..',
      url: ACCOUNTS_URL,
      env: {
        ...SITE_ENV,
        PARLEY_LISTEN: '127.0.0.1:3440',
        PARLEY_DATA_DIR: 'target/e2e-data/3440',
        GEMINI_API_KEY: '',
        PARLEY_PUBLIC_URL: ACCOUNTS_URL,
        PARLEY_OIDC_PROVIDERS: 'corp',
        PARLEY_OIDC_CORP_ISSUER: PROVIDER_URL,
        PARLEY_OIDC_CORP_CLIENT_ID: 'parley',
        PARLEY_OIDC_CORP_CLIENT_SECRET: OIDC_CLIENT_SECRET,
        PARLEY_OIDC_CORP_LABEL: 'Corp ID',
      },
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      command: parley(3406),
      cwd: '..',
      url: NO_RETAIN_URL,
      env: {
        ...SITE_ENV,
        PARLEY_LISTEN: '127.0.0.1:3406',
        PARLEY_DATA_DIR: 'target/e2e-data/3406',
        GEMINI_API_KEY: '',
        PARLEY_EMULATOR_LISTEN: '127.0.0.1:3407',
        PARLEY_EMULATOR_CONTROL: 'true',
        PARLEY_RETAIN_FOR: '0',
        // Its log is JSON: secrets.spec.ts scans that format too.
        PARLEY_LOG_FORMAT: 'json',
      },
      reuseExistingServer: false,
      timeout: 60_000,
    },
  ],
});
