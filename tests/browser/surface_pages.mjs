// Drives headless Debian Chromium through the air-quality surface on /map (toggle, date slider, legend) and the
// estimate on /citizen at a Seoul point; prints one JSON report on stdout for tests/test_surface_pages.py.
// usage: node surface_pages.mjs BASE_URL ARTIFACTS_DIR ASSETS_DIR COLLECTION LON LAT
import { createRequire } from 'node:module';
import path from 'node:path';

const [base, artifacts, assetsDir, collection, lon, lat] = process.argv.slice(2);
const require = createRequire(path.resolve(assetsDir, 'package.json'));
const { chromium } = require('playwright-core');

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];
const report = { pageErrors: [], offsite: [], map: {}, citizen: {} };

function watch(page, tiles) {
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['127.0.0.1', 'localhost'].includes(u.hostname) && !u.protocol.startsWith('data')
      && !u.protocol.startsWith('blob')) report.offsite.push(r.url());
  });
  page.on('response', (r) => {
    if (r.url().includes(`/collections/${collection}/map/tiles/`)) {
      tiles.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] || '' });
    }
  });
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: FLAGS,
  headless: true });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, locale: 'ko-KR' });
  const page = await context.newPage();
  const tiles = [];
  watch(page, tiles);
  await page.goto(`${base}/map#11/${lat}/${lon}`);
  await page.waitForFunction(() => window.__ready === true && window.__mapIdle === true, null, { timeout: 60000 });
  const m = report.map;
  m.tilesBeforeToggle = tiles.length;
  m.layerList = await page.$$eval('#layer-list input[data-collection]', (xs) => xs.map((x) => x.dataset.collection));
  m.visibleBefore = await page.evaluate((c) => window.__map.getLayoutProperty(`surface-${c}-raster`, 'visibility'),
    collection);
  await page.check(`#toggle-surface-${collection}`);
  await page.evaluate(() => window.__waitIdle());
  await page.waitForTimeout(500);
  m.visibleAfter = await page.evaluate((c) => window.__map.getLayoutProperty(`surface-${c}-raster`, 'visibility'),
    collection);
  m.order = await page.evaluate((c) => {
    const ids = window.__map.getStyle().layers.map((l) => l.id);
    return { raster: ids.indexOf(`surface-${c}-raster`), stations: Math.min(...(window.__layerIds.air_quality || [])
      .map((id) => ids.indexOf(id))) };
  }, collection);
  m.tilesAfterToggle = tiles.slice();
  m.legend = await page.$eval(`#surface-legend-${collection}`, (x) => x.textContent);
  m.slider = await page.$eval(`#day-${collection}`, (x) => ({ min: x.min, max: x.max, value: x.value }));
  m.label = await page.$eval(`#day-label-${collection}`, (x) => x.textContent);
  const before = tiles.length;
  await page.$eval(`#day-${collection}`, (x) => {
    x.value = '0';
    x.dispatchEvent(new Event('input'));
    x.dispatchEvent(new Event('change'));
  });
  await page.evaluate(() => window.__waitIdle());
  await page.waitForTimeout(500);
  m.day = await page.evaluate(() => window.__surfaceDay);
  m.labelAfter = await page.$eval(`#day-label-${collection}`, (x) => x.textContent);
  m.tilesAfterSlide = tiles.slice(before);
  await page.screenshot({ path: path.join(artifacts, 'surface-map.png') });
  await context.close();

  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'ko-KR' });
  const citizen = await phone.newPage();
  watch(citizen, []);
  await citizen.goto(`${base}/citizen`);
  await citizen.waitForFunction(() => window.__ready === true, null, { timeout: 60000 });
  report.citizen.sejongHidden = await citizen.$eval('#sec-surface', (x) => x.hidden);
  await citizen.evaluate(([x, y]) => window.__pick(x, y), [Number(lon), Number(lat)]);
  await citizen.waitForFunction(() => window.__results && window.__estimates, null, { timeout: 30000 });
  report.citizen.estimates = await citizen.evaluate(() => window.__estimates);
  report.citizen.hidden = await citizen.$eval('#sec-surface', (x) => x.hidden);
  report.citizen.text = await citizen.$eval('#sec-surface', (x) => x.textContent);
  report.citizen.entries = await citizen.$$eval('#sec-surface [data-estimate]', (xs) => xs.map((x) => ({
    collection: x.dataset.estimate, estimate: x.querySelector('.estimate-value').textContent,
    measured: x.querySelector('.measured-value').textContent })));
  await citizen.screenshot({ path: path.join(artifacts, 'surface-citizen.png') });
  await phone.close();
} catch (e) {
  report.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));
