// Regenerates the README screenshots (docs/map.png, docs/citizen.png, docs/citizen-mobile.png) from a running server
// with headless Debian Chromium, the same way tests/browser/run.mjs drives the pages.
// usage: node tests/browser/screenshots.mjs BASE_URL OUT_DIR ASSETS_DIR   (e.g. http://127.0.0.1:5000 docs var/assets)
import { createRequire } from 'node:module';
import path from 'node:path';

const [base, out, assetsDir] = process.argv.slice(2);
const require = createRequire(path.resolve(assetsDir, 'package.json'));
const { chromium } = require('playwright-core');
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];
const MAP_VIEW = '#14/36.5010/127.2620';   // 정부세종청사 and 세종호수공원 (어진동, 세종동): roads, names, boundaries
// dense point and line layers would hide the basemap in a small picture
const HIDDEN = ['street_lights', 'emd_2018', 'bus_stops', 'bus_routes', 'city_parks', 'public_institutions', 'fuel_stations'];

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: FLAGS,
  headless: true });
try {
  const desk = await browser.newContext({ viewport: { width: 1280, height: 820 }, locale: 'ko-KR' });
  const page = await desk.newPage();
  const settle = async (p, extra) => {
    await p.waitForFunction((more) => window.__ready === true && (!more || window[more]), extra, { timeout: 60000 });
    await p.evaluate(() => window.__waitIdle());
  };
  await page.goto(`${base}/map${MAP_VIEW}`);
  await settle(page);
  for (const id of HIDDEN) {
    const box = await page.$(`#toggle-${id}`);
    if (box && await box.isChecked()) await box.click();
  }
  await page.evaluate(() => window.__waitIdle());
  await page.screenshot({ path: path.join(out, 'map.png') });
  await page.goto(`${base}/citizen`);
  await settle(page, '__results');
  await page.screenshot({ path: path.join(out, 'citizen.png') });
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true,
    hasTouch: true });
  const p2 = await phone.newPage();
  await p2.goto(`${base}/citizen?lang=en`);
  await settle(p2, '__results');
  await p2.screenshot({ path: path.join(out, 'citizen-mobile.png') });
} finally {
  await browser.close();
}
