import { test, expect } from './base';
import type { Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { control, fixture, openChat } from './helpers';

/** Serious and critical axe violations on the page as it is now. */
async function violations(page: Page) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

for (const scheme of ['light', 'dark'] as const) {
  test(`empty chat and chat with attachments have no serious violations (${scheme})`, async ({ page }) => {
    await page.emulateMedia({ colorScheme: scheme });
    await openChat(page);
    expect(await violations(page)).toEqual([]);
    await page.getByLabel('Attach files').setInputFiles([fixture('photo-3000x2000.jpg'), fixture('report-3-pages.pdf')]);
    await expect(page.getByTestId('pending-attachment')).toHaveCount(2);
    expect(await violations(page)).toEqual([]);
    await page.getByRole('textbox', { name: 'Message' }).fill('Describe **both**');
    await page.getByRole('button', { name: 'Send' }).click();
    await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done');
    expect(await violations(page)).toEqual([]);
  });
}

test('the error state has no serious violations', async ({ page }) => {
  await openChat(page);
  await control('/faults', { route: 'generate', kind: 'rate_limited', retry_delay: '120s' });
  await page.getByRole('textbox', { name: 'Message' }).fill('hello');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByRole('alert')).toContainText('Gemini is busy');
  expect(await violations(page)).toEqual([]);
});

test('the mobile layout has no serious violations', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await openChat(page);
  expect(await violations(page)).toEqual([]);
  await page.getByRole('button', { name: 'Show conversations' }).click();
  await expect(page.getByRole('navigation', { name: 'Conversations' })).toBeVisible();
  expect(await violations(page)).toEqual([]);
});

test('the Files view has no serious violations', async ({ page }) => {
  await openChat(page);
  await page.getByLabel('Attach files').setInputFiles([fixture('report-3-pages.pdf')]);
  await page.getByRole('textbox', { name: 'Message' }).fill('keep');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done');
  await page.getByRole('button', { name: 'Files', exact: true }).click();
  await expect(page.getByRole('dialog', { name: 'Files' }).getByRole('row')).toHaveCount(2);
  expect(await violations(page)).toEqual([]);
});
