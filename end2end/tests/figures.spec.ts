import { test, expect } from './base';
import { openChat } from './helpers';

// Prints figures; asserts only that the path works (speed targets are read, not enforced).
test('figures: preview and Send → bubble for a 20-megapixel JPEG', async ({ page }) => {
  await openChat(page);
  const previewMs = await page.evaluate(async () => {
    const canvas = new OffscreenCanvas(5472, 3648);
    const ctx = canvas.getContext('2d')!;
    const gradient = ctx.createLinearGradient(0, 0, 5472, 3648);
    gradient.addColorStop(0, '#1c7ed6');
    gradient.addColorStop(1, '#f59f00');
    ctx.fillStyle = gradient;
    ctx.fillRect(0, 0, 5472, 3648);
    for (let i = 0; i < 5472; i++) {
      ctx.fillStyle = `hsl(${i % 360} 70% 50%)`;
      ctx.fillRect((i * 997) % 5472, (i * 613) % 3648, 40, 40);
    }
    const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.92 });
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'twenty-megapixels.jpg', { type: 'image/jpeg' }));
    const input = document.querySelector<HTMLInputElement>('input[aria-label="Attach files"]')!;
    input.files = dt.files;
    const t0 = performance.now();
    input.dispatchEvent(new Event('change', { bubbles: true }));
    return await new Promise<number>((resolve) => {
      const check = () => {
        const img = document.querySelector<HTMLImageElement>('[data-testid="pending-attachment"] img');
        if (img && img.complete && img.naturalWidth > 0) resolve(performance.now() - t0);
        else requestAnimationFrame(check);
      };
      check();
    });
  });
  await page.getByRole('textbox', { name: 'Message' }).fill('How big is it?');
  const bubbleMs = await page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        const button = [...document.querySelectorAll('button')].find((b) => b.textContent?.trim() === 'Send')!;
        const t0 = performance.now();
        const check = () => {
          const img = document.querySelector<HTMLImageElement>('article[data-role="user"] img[data-testid="attachment-preview"]');
          if (img && img.complete && img.naturalWidth > 0) resolve(performance.now() - t0);
          else requestAnimationFrame(check);
        };
        button.click();
        check();
      }),
  );
  console.log(`20 MP JPEG (5472×3648): preview ready ${previewMs.toFixed(0)} ms after picking; Send → bubble ${bubbleMs.toFixed(1)} ms`);
  await expect(page.locator('article[data-role="model"]')).toContainText('5472×3648 px', { timeout: 30_000 });
});
