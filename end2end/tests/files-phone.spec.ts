import { test, expect } from './base';
import { openChat, send } from './helpers';

test.use({ viewport: { width: 390, height: 844 } });

// On a 390×844 phone the Files view fits the screen: each upload's name on one or two lines
// across the card, its size, state and expiry under it, and Delete reachable without scrolling
// sideways.
test('the Files view fits a phone: names readable, Delete on screen', async ({ page }) => {
  await openChat(page);
  const name = 'quarterly-report-with-a-rather-long-file-name-2026.txt';
  await page.getByLabel('Attach files').setInputFiles([{ name, mimeType: 'text/plain', buffer: Buffer.from('numbers\n') }]);
  await send(page, 'keep it');
  await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done', { timeout: 30_000 });
  await page.getByRole('button', { name: 'Files', exact: true }).click();
  const files = page.getByRole('dialog', { name: 'Files' });
  const row = files.getByRole('row').filter({ hasText: name });
  await expect(row).toContainText('Ready');
  const cell = row.getByRole('cell').first();
  const nameBox = (await cell.boundingBox())!;
  // Not one letter per line: the name gets (nearly) the card's whole width.
  expect(nameBox.width, 'the name cell is wide').toBeGreaterThan(250);
  expect(nameBox.height, 'two lines at most').toBeLessThan(60);
  const remove = row.getByRole('button', { name: `Delete ${name}` });
  const box = (await remove.boundingBox())!;
  expect(box.x).toBeGreaterThanOrEqual(0);
  expect(box.x + box.width, 'Delete is on screen').toBeLessThanOrEqual(390);
  const scroll = await files.evaluate((el) => el.scrollWidth - el.clientWidth);
  expect(scroll, 'no sideways scrolling').toBeLessThanOrEqual(0);
  await remove.click();
  await expect(files.getByText('No uploads yet.')).toBeVisible();
});
