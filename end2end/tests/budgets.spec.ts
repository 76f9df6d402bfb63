import { rmSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Page } from '@playwright/test';
import { test, expect } from './base';
import { BUDGETS_URL, OIDC_CLIENT_SECRET, PROVIDER_URL } from '../playwright.config';
import { openChat, send, startParley, waitUp } from './helpers';

// Its own parley: 300 tokens a day for each anonymous visitor, none for accounts, sign-in at
// the suite's provider, and `ops@example.test` an operator. A fresh ledger each run.
let server: ChildProcess | undefined;

test.beforeAll(async () => {
  rmSync(path.join(__dirname, '..', '..', 'target', 'e2e-data', '3460'), { recursive: true, force: true });
  server = startParley(3460, 3461, {
    PARLEY_BUDGET_ANONYMOUS: '300 tokens/day',
    PARLEY_BUDGET_ACCOUNT: 'off',
    PARLEY_ADMINS: 'ops@example.test',
    PARLEY_PUBLIC_URL: BUDGETS_URL,
    PARLEY_OIDC_PROVIDERS: 'corp',
    PARLEY_OIDC_CORP_ISSUER: PROVIDER_URL,
    PARLEY_OIDC_CORP_CLIENT_ID: 'parley',
    PARLEY_OIDC_CORP_CLIENT_SECRET: OIDC_CLIENT_SECRET,
    PARLEY_OIDC_CORP_LABEL: 'Corp ID',
  });
  await waitUp(BUDGETS_URL);
});
test.afterAll(() => {
  server?.kill();
});

const answers = (page: Page) => page.locator('article[data-role="model"]');

/** The provider's own forms, after `Sign in` was followed: any login, then consent. */
async function atProvider(page: Page, login: string) {
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${BUDGETS_URL}/`);
  await expect(page.locator('html[data-hydrated="true"]')).toBeAttached();
  await expect(page.getByRole('button', { name: 'Account', exact: true })).toBeVisible();
}

/** Sends `text`; the answer's bubble once done, or null when the composer's alert says why not. */
async function ask(page: Page, text: string): Promise<'answered' | 'refused'> {
  const before = await answers(page).count();
  await send(page, text);
  const refusal = page.locator('form.composer').getByRole('alert');
  await expect(refusal.or(answers(page).nth(before).and(page.locator('[data-status="done"]')))).toBeVisible({ timeout: 30_000 });
  return (await refusal.isVisible()) ? 'refused' : 'answered';
}

test('a visitor sees what is left, is refused with the message kept and offered to sign in; an operator sets a budget on /admin', async ({ page }) => {
  await openChat(page, BUDGETS_URL);
  const budget = page.getByRole('status', { name: 'Budget' });
  await expect(budget).toHaveText('300 of 300 tokens left today');

  // Answers until the budget is spent: the status counts down.
  expect(await ask(page, 'What is a token?')).toBe('answered');
  await expect(budget).not.toHaveText('300 of 300 tokens left today');
  await expect(budget).toHaveText(/^\d+ of 300 tokens left today$/);
  let outcome: 'answered' | 'refused' = 'answered';
  for (let i = 0; i < 6 && outcome === 'answered'; i++) outcome = await ask(page, `And question ${i}?`);
  expect(outcome).toBe('refused');

  // The refusal: a sentence with the budget and when it renews, Sign in offered, and the
  // message back in the composer, not lost.
  const alert = page.locator('form.composer').getByRole('alert');
  await expect(alert).toContainText('budget of 300 tokens today');
  await expect(alert).toContainText(/renews in \d+ (h|min)/);
  await expect(alert).toContainText('Sign in for a larger budget.');
  await expect(page.getByRole('textbox', { name: 'Message' })).toHaveValue(/^And question \d\?$/);
  const refusedAnswers = await answers(page).count();
  await expect(page.locator('article[data-role="user"]')).toHaveCount(refusedAnswers, { timeout: 5_000 });

  // Signing in lifts it: accounts have no budget here, and the status goes away.
  await alert.getByRole('link', { name: 'Sign in' }).click();
  await atProvider(page, 'ops@example.test');
  await expect(page.getByRole('status', { name: 'Budget' })).toHaveCount(0);
  expect(await ask(page, 'Now as an operator?')).toBe('answered');

  // The operator's page: spend per day, per model, the top accounts and anonymous addresses.
  await page.goto(`${BUDGETS_URL}/admin`);
  await expect(page.getByRole('heading', { name: "Usage on the site's key" })).toBeVisible();
  await expect(page.getByRole('img', { name: /Spend per day, last 30 days/ })).toBeVisible();
  await expect(page.getByRole('table', { name: 'Per model' })).toContainText('gemini-2.5-flash');
  await expect(page.getByRole('table', { name: 'Top anonymous addresses' }).locator('tbody tr')).toHaveCount(1);
  const accounts = page.getByRole('table', { name: 'Top accounts' });
  await expect(accounts).toContainText('ops@example.test');
  // Set budget: 5 tokens a day for the operator's own account.
  await accounts.getByRole('textbox', { name: 'Budget for ops@example.test' }).fill('5 tokens/day');
  await accounts.getByRole('button', { name: 'Set budget' }).click();
  await expect(page.getByRole('status')).toHaveText('ops@example.test now has 5 tokens/day.');
  await expect(accounts.getByRole('textbox', { name: 'Budget for ops@example.test' })).toHaveValue('5 tokens/day');

  // Back on the chat: the account's own budget shows, and refuses — without a Sign in offer.
  await openChat(page, BUDGETS_URL);
  await expect(page.getByRole('status', { name: 'Budget' })).toHaveText('0 of 5 tokens left today');
  expect(await ask(page, 'One more?')).toBe('refused');
  await expect(page.locator('form.composer').getByRole('alert')).toContainText('budget of 5 tokens today');
  await expect(page.locator('form.composer').getByRole('alert').getByRole('link', { name: 'Sign in' })).toHaveCount(0);
});

test('/admin is not found for anyone but an operator', async ({ page }) => {
  const res = await page.goto(`${BUDGETS_URL}/admin`);
  expect(res?.status()).toBe(404);
});
