// Screenshots of each chat state, light at 1440×900 and dark at 390×844, for a person to look
// at. Needs a running site: `node screenshots.mjs [URL]` (default http://127.0.0.1:3000);
// writes end2end/screenshots/*.png.
import { chromium } from '@playwright/test';
import { mkdirSync } from 'node:fs';
const url = process.argv[2] ?? 'http://127.0.0.1:3000/';
const out = new URL('./screenshots/', import.meta.url).pathname;
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox','--disable-gpu','--disable-background-networking'] });
for (const [name, viewport, scheme] of [['desktop',{width:1440,height:900},'light'],['mobile',{width:390,height:844},'dark']]) {
  const page = await browser.newPage({ viewport, colorScheme: scheme });
  await page.goto(url);
  await page.waitForSelector('html[data-hydrated]');
  await page.screenshot({ path: `${out}${name}-empty.png` });
  await page.getByLabel('Attach files').setInputFiles([new URL('./fixtures/photo-3000x2000.jpg', import.meta.url).pathname, new URL('./fixtures/report-3-pages.pdf', import.meta.url).pathname]);
  await page.waitForTimeout(500);
  await page.getByRole('textbox',{name:'Message'}).fill('What are these two files?');
  await page.screenshot({ path: `${out}${name}-attached.png` });
  await page.getByRole('button',{name:'Send'}).click();
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}${name}-pending.png` });
  await page.waitForSelector('article[data-role=model][data-status=done]');
  await page.screenshot({ path: `${out}${name}-done.png` });
}
await browser.close();
