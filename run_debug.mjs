// Drives headless Debian Chromium (playwright-core, vendored into var/assets by server/assets.py) through /map
// and /citizen and prints one JSON report on stdout; tests/test_browser.py asserts on it.
// usage: node run.mjs BASE_URL ARTIFACTS_DIR ASSETS_DIR
import { createRequire } from 'node:module';
import path from 'node:path';

const [base, artifacts, assetsDir] = process.argv.slice(2);
const require = createRequire(path.resolve(assetsDir, 'package.json'));
const { chromium } = require('playwright-core');

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];
const report = { requests: [], failed: [], console: [], pageErrors: [], map: {}, citizen: {} };

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: FLAGS,
  headless: true });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, locale: 'ko-KR' });
  context.on('request', (r) => report.requests.push(r.url()));
  context.on('response', (r) => { if (r.status() >= 400) report.failed.push(`${r.status()} ${r.url()}`); });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') report.console.push(m.text()); });
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));

  const ready = () => page.waitForFunction(() => window.__ready === true && window.__mapIdle === true, null,
    { timeout: 45000 });
  const T0 = Date.now(); const log = (m) => process.stderr.write(`${((Date.now()-T0)/1000).toFixed(1)}s ${m}\n`);
  const idle = async () => { log('idle?'); const r = await page.evaluate(() => window.__waitIdle()); log('idle ok'); return r; };
  const rendered = () => page.evaluate(() => {
    const out = {};
    for (const [c, ids] of Object.entries(window.__layerIds)) {
      const layers = ids.filter((id) => window.__map.getLayer(id)
        && window.__map.getLayoutProperty(id, 'visibility') !== 'none');
      out[c] = layers.length ? window.__map.queryRenderedFeatures({ layers }).length : -1;
    }
    return out;
  });
  // what the basemap rendered: features per style layer, and how often each area's name is drawn
  const basemapSeen = () => {
    const m = window.__map;
    const count = (id) => (m.getLayer(id) && m.getLayoutProperty(id, 'visibility') !== 'none'
      ? m.queryRenderedFeatures({ layers: [id] }) : []);
    const names = (id) => {
      const out = {};
      for (const f of count(id)) out[f.properties.name] = (out[f.properties.name] || 0) + 1;
      return out;
    };
    return {
      roads: count('roads-line').length, legalDong: count('legal_dong-line').length,
      roadLabels: [...new Set(count('roads-label').map((f) => f.properties.name))],
      dongLabels: names('legal_dong-label'), adminLabels: names('admin_areas-label'),
      sourceLayers: [...new Set(count('legal_dong-label').map((f) => f.sourceLayer))],
    };
  };
  const popupRows = () => page.evaluate(() => {
    const p = document.querySelector('.maplibregl-popup .feature-popup');
    if (!p) return null;
    const rows = {};
    for (const tr of p.querySelectorAll('tr[data-prop]')) {
      rows[tr.dataset.prop] = { title: tr.querySelector('th').textContent, value: tr.querySelector('td').dataset.value };
    }
    return { collection: p.dataset.collection, fid: p.dataset.fid, rows };
  });

  // ---------------------------------------------------------------- /map
  await page.goto(`${base}/map`);
  await ready();
  await idle();
  report.map.initial = await rendered();
  report.map.zoom = await page.evaluate(() => window.__map.getZoom());
  report.map.layerList = await page.$$eval('#layer-list input[data-collection]',
    (xs) => xs.map((x) => ({ id: x.dataset.collection, checked: x.checked })));
  report.map.legend = await page.$$eval('#legend .legend-block', (xs) => xs.map((x) => x.dataset.collection));
  report.map.downloads = await page.$$eval('#downloads a', (xs) => xs.map((a) => a.href));
  report.map.sources = await page.$$eval('#sources li', (xs) => xs.map((x) => x.textContent));
  report.map.attribution = await page.$eval('.maplibregl-ctrl-attrib', (x) => x.textContent);
  await page.screenshot({ path: path.join(artifacts, 'map.png') });

  // the basemap around 정부세종청사: roads, road names along the lines, 법정동 boundaries and one label per area
  report.map.basemapGroup = await page.$$eval('#basemap-group input[data-collection]', (xs) => xs.map((x) => x.dataset.collection));
  await page.evaluate(() => window.__map.jumpTo({ center: [127.262, 36.503], zoom: 13 }));
  await idle();
  report.map.basemap = await page.evaluate(basemapSeen);
  await page.click('#toggle-basemap');
  await idle();
  report.map.basemapOff = await page.evaluate(basemapSeen);
  await page.click('#toggle-basemap');
  await idle();
  report.map.basemapOn = await page.evaluate(basemapSeen);

  // every styled layer, where it has data
  report.map.perLayer = {};
  const layerIds = await page.evaluate(() => window.__layerIds);
  for (const c of Object.keys(layerIds)) {
    if (!layerIds[c].length) continue;
    const items = await (await fetch(`${base}/collections/${c}/items?f=json&limit=1`)).json();
    const f = items.features[0];
    if (!f) continue;
    let xy = f.geometry.coordinates;
    while (Array.isArray(xy[0])) xy = xy[0];
    log(`layer ${c}`); await page.evaluate(([lon, lat]) => window.__map.jumpTo({ center: [lon, lat], zoom: 15 }), xy);
    await idle();
    report.map.perLayer[c] = (await rendered())[c];
  }

  // click a bike station and an administrative area; the popup comes from the features API
  report.map.clicks = [];
  for (const [c, center, zoom] of [['bike_stations', [127.2890, 36.4800], 15], ['admin_areas', [127.2890, 36.4800], 12]]) {
    await page.evaluate(() => document.querySelector('.maplibregl-popup-close-button')?.click());
    await page.evaluate(([ce, z]) => window.__map.jumpTo({ center: ce, zoom: z }), [center, zoom]);
    await idle();
    const target = await page.evaluate((col) => {
      const m = window.__map;
      const ids = window.__layerIds[col].filter((id) => m.getLayer(id).type !== 'symbol');
      const fs = m.queryRenderedFeatures({ layers: ids });
      const canvas = m.getCanvas().getBoundingClientRect();
      const mine = new Set(window.__layerIds[col]);
      const clickable = new Set(window.__interactive);
      const alone = (x, y) => {   // the page's click handler will pick a feature of this collection, and only one
        const under = m.queryRenderedFeatures([[x - 6, y - 6], [x + 6, y + 6]])
          .filter((u) => clickable.has(u.layer.id));
        return under.length > 0 && mine.has(under[0].layer.id)
          && under.filter((u) => mine.has(u.layer.id)).length === 1 ? under[0] : null;
      };
      const w = m.getCanvas().clientWidth, h = m.getCanvas().clientHeight;
      for (const f of fs) {
        if (f.geometry.type !== 'Point') break;
        const p = m.project(f.geometry.coordinates);
        if (p.x > 40 && p.y > 80 && p.x < w - 60 && p.y < h - 60 && alone(p.x, p.y)) {
          return { x: canvas.left + p.x, y: canvas.top + p.y, id: f.properties.id ?? f.id };
        }
      }
      for (let y = 100; y < h - 60; y += 23) {
        for (let x = 60; x < w - 80; x += 23) {
          const u = alone(x, y);
          if (u) return { x: canvas.left + x, y: canvas.top + y, id: u.properties.id ?? u.id };
        }
      }
      return null;
    }, c);
    if (!target) { report.map.clicks.push({ collection: c, error: 'no feature to click' }); continue; }
    await page.evaluate(() => { window.__popup = null; });
    await page.mouse.click(target.x, target.y);
    await page.waitForFunction(() => window.__popup, null, { timeout: 15000 });
    report.map.clicks.push({ collection: c, clicked: target.id, popup: await popupRows() });
  }
  await page.screenshot({ path: path.join(artifacts, 'map-popup.png') });

  // English switch keeps the position
  await page.goto(`${base}/map?lang=en#12/36.48/127.289`);
  await ready();
  report.map.english = {
    heading: await page.$eval('#h-layers', (x) => x.textContent),
    firstLayer: await page.$eval('#layer-list label', (x) => x.textContent),
    zoom: await page.evaluate(() => window.__map.getZoom()),
  };

  // ---------------------------------------------------------------- /citizen
  await page.goto(`${base}/citizen`);
  await ready();
  await page.waitForFunction(() => window.__results, null, { timeout: 30000 });
  await idle();
  report.citizen.results = await page.evaluate(() => window.__results);
  report.citizen.rendered = await rendered();
  report.citizen.lists = {
    bike_stations: await page.$$eval('#sec-bike_stations li button', (xs) => xs.length),
    facilities: await page.$$eval('#sec-facilities li button', (xs) => xs.length),
    air: await page.$eval('#sec-air_quality .body', (x) => x.textContent),
  };
  // keyboard: focus the first bike station in the list and press Enter
  await page.focus('#sec-bike_stations li button');
  await page.evaluate(() => { window.__popup = null; });
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => window.__popup, null, { timeout: 15000 });
  report.citizen.keyboardPopup = await popupRows();
  // keyboard: pick the map centre with the button after moving the map with the arrow keys
  await page.focus('#map canvas');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await page.waitForTimeout(400);
  await page.focus('#at-centre');
  await page.evaluate(() => { window.__results = null; });
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => window.__results, null, { timeout: 30000 });
  report.citizen.movedPoint = await page.evaluate(() => window.__results.point);
  await page.evaluate(() => window.__pick(127.2890, 36.4800));
  await page.waitForFunction(() => window.__results, null, { timeout: 30000 });
  await idle();
  await page.screenshot({ path: path.join(artifacts, 'citizen.png') });
  report.citizen.basemap = await page.evaluate(basemapSeen);
  await page.evaluate(() => window.__map.jumpTo({ center: [127.27, 36.53], zoom: 10.5 }));
  await idle();
  report.citizen.renderedCity = await rendered();

  // a phone-sized screen, English
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true,
    hasTouch: true });
  phone.on('request', (r) => report.requests.push(r.url()));
  const p2 = await phone.newPage();
  p2.on('pageerror', (e) => report.pageErrors.push(String(e)));
  await p2.goto(`${base}/citizen?lang=en`);
  await p2.waitForFunction(() => window.__ready === true && window.__results, null, { timeout: 45000 });
  await p2.evaluate(() => window.__waitIdle());
  report.citizen.mobile = {
    scrollWidth: await p2.evaluate(() => document.documentElement.scrollWidth),
    heading: await p2.$eval('h1', (x) => x.textContent),
    lang: await p2.$eval('html', (x) => x.lang),
  };
  await p2.screenshot({ path: path.join(artifacts, 'citizen-mobile.png') });
} catch (e) {
  report.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));
