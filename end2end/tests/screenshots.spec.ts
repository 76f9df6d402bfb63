import { test, expect } from './base';
import type { Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { control, fixture, openChat } from './helpers';

// Screenshots of each state, for a person to look at (not compared): written to
// end2end/artifacts/screenshots/{desktop,mobile}-{light,dark}-<state>.png.
const out = path.join(__dirname, '..', 'artifacts', 'screenshots');

const layouts = [
  { name: 'desktop', viewport: { width: 1440, height: 900 } },
  { name: 'mobile', viewport: { width: 390, height: 844 } },
] as const;

for (const layout of layouts) {
  for (const scheme of ['light', 'dark'] as const) {
    test(`screenshots: ${layout.name} ${scheme}`, async ({ page }) => {
      mkdirSync(out, { recursive: true });
      const shot = (state: string) => page.screenshot({ path: path.join(out, `${layout.name}-${scheme}-${state}.png`) });
      await page.setViewportSize(layout.viewport);
      await page.emulateMedia({ colorScheme: scheme });
      await openChat(page);
      await shot('empty');
      await page.getByLabel('Attach files').setInputFiles([fixture('photo-3000x2000.jpg'), fixture('report-3-pages.pdf')]);
      await expect(page.locator('[data-testid="pending-attachment"] img')).toBeVisible();
      await page.getByRole('textbox', { name: 'Message' }).fill('What are these two files?');
      await shot('attached');
      await control('/answers', {
        texts: [
          '## Two files\n\n1. **A photograph**, 3000×2000 px.\n2. **A report** of three pages.\n\n' +
            '| file | kind | size |\n|---|---|---|\n| photo-3000x2000.jpg | JPEG | 385 KB |\n| report-3-pages.pdf | PDF | 304 KB |\n\n' +
            '```python\nprint("hello")\n```',
        ],
      });
      await page.getByRole('button', { name: 'Send' }).click();
      await shot('pending');
      await expect(page.locator('article[data-role="model"]')).toHaveAttribute('data-status', 'done');
      await shot('answered');
      await control('/faults', { route: 'generate', kind: 'rate_limited', retry_delay: '120s' });
      await page.getByRole('textbox', { name: 'Message' }).fill('And now?');
      await page.getByRole('button', { name: 'Send' }).click();
      await expect(page.getByRole('alert')).toBeVisible();
      await shot('error');
      if (layout.name === 'mobile') {
        await page.getByRole('button', { name: 'Show conversations' }).click();
        await shot('conversations');
      }
    });
  }
}
