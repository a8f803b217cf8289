// Renders the PNG app icons in public/ from the SVG sources with Chromium.
// The PNGs are committed (installing the app needs them, and rendering at
// build time would make every build depend on a browser); run this again
// after changing public/icon.svg or public/icon-maskable.svg:
//   node scripts/icons.mjs
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const pub = join(dirname(fileURLToPath(import.meta.url)), '..', 'public');
const outputs = [
  // [source, output, size]: "any" icons keep their rounded corners on a
  // transparent background; maskable and Apple icons fill the square and
  // the platform applies its own mask.
  ['icon.svg', 'icon-192.png', 192],
  ['icon.svg', 'icon-512.png', 512],
  ['icon-maskable.svg', 'icon-maskable-512.png', 512],
  ['icon-maskable.svg', 'apple-touch-icon.png', 180],
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
});
try {
  const page = await browser.newPage();
  for (const [source, output, size] of outputs) {
    const svg = readFileSync(join(pub, source)).toString('base64');
    await page.setViewportSize({ width: size, height: size });
    await page.setContent(
      `<body style="margin:0"><img src="data:image/svg+xml;base64,${svg}" width="${size}" height="${size}" style="display:block"></body>`,
    );
    await page.locator('img').evaluate((img) => img.decode());
    await page.screenshot({ path: join(pub, output), omitBackground: true, clip: { x: 0, y: 0, width: size, height: size } });
    console.log(`public/${output} (${size}x${size})`);
  }
} finally {
  await browser.close();
}
