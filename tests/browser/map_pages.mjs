// Drives headless Debian Chromium through /map (popup, attribution) at a phone and a desktop size, and the HTML
// items table; prints one JSON report on stdout for tests/test_map_pages.py.
// usage: node map_pages.mjs BASE_URL ARTIFACTS_DIR ASSETS_DIR
import { createRequire } from 'node:module';
import path from 'node:path';

const [base, artifacts, assetsDir] = process.argv.slice(2);
const require = createRequire(path.resolve(assetsDir, 'package.json'));
const { chromium } = require('playwright-core');

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];
const VIEWPORTS = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 820 } };
const report = { pageErrors: [], map: {}, items: {} };

// the attribution control: collapsed or not, its size and its entries (MapLibre separates sources with ' | ')
function attribution(x) {
  const inner = x.querySelector('.maplibregl-ctrl-attrib-inner');
  const r = x.getBoundingClientRect();
  const text = (s) => { const d = document.createElement('div'); d.innerHTML = s; return d.textContent.trim(); };
  return { classes: x.className, open: x.hasAttribute('open'), height: r.height, width: r.width,
    entries: inner ? inner.innerHTML.split(/\s*\|\s*/).map(text).filter(Boolean) : [] };
}

async function clickStation(page) {
  // a bike station near the bottom edge of the map, where a popup opening upwards would be cut off
  return page.evaluate(() => {
    const m = window.__map;
    const ids = window.__layerIds.bike_stations.filter((id) => m.getLayer(id).type === 'circle');
    const canvas = m.getCanvas().getBoundingClientRect();
    const w = m.getCanvas().clientWidth, h = m.getCanvas().clientHeight;
    const clickable = new Set(window.__interactive);
    let best = null;
    for (const f of m.queryRenderedFeatures({ layers: ids })) {
      const p = m.project(f.geometry.coordinates);
      if (p.x < 60 || p.x > w - 60 || p.y < 60 || p.y > h - 120) continue;   // clear of the map controls
      const under = m.queryRenderedFeatures([[p.x - 6, p.y - 6], [p.x + 6, p.y + 6]])
        .filter((u) => clickable.has(u.layer.id));
      if (!under.length || !ids.includes(under[0].layer.id)) continue;
      // the one nearest the lower right corner, where a popup is most likely to be cut off
      if (!best || p.x + p.y > best.score) best = { x: canvas.left + p.x, y: canvas.top + p.y, score: p.x + p.y };
    }
    return best;
  });
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: FLAGS,
  headless: true });
try {
  for (const [name, viewport] of Object.entries(VIEWPORTS)) {
    const context = await browser.newContext({ viewport, locale: 'ko-KR' });
    const page = await context.newPage();
    page.on('pageerror', (e) => report.pageErrors.push(String(e)));
    await page.goto(`${base}/map#15/36.4800/127.2890`);
    await page.waitForFunction(() => window.__ready === true && window.__mapIdle === true, null, { timeout: 45000 });
    await page.evaluate(() => window.__waitIdle());
    const out = { viewport };
    out.attribution = await page.$eval('.maplibregl-ctrl-attrib', attribution);
    out.sources = await page.evaluate(() => {
      const srcs = window.__map.getStyle().sources;
      return Object.keys(srcs);
    });
    const target = await clickStation(page);
    if (target) try {
      await page.evaluate(() => { window.__popup = null; });
      await page.mouse.click(target.x, target.y);
      await page.waitForFunction(() => window.__popup, null, { timeout: 15000 });
      await page.waitForTimeout(300);
      out.popup = await page.evaluate(() => {
        const p = document.querySelector('.maplibregl-popup');
        const c = p.querySelector('.maplibregl-popup-content');
        const r = p.getBoundingClientRect();
        return { scrollTop: c.scrollTop, scrollHeight: c.scrollHeight, clientHeight: c.clientHeight,
          rect: { left: r.left, top: r.top, right: r.right, bottom: r.bottom },
          heading: p.querySelector('h3')?.textContent };
      });
      out.clickedAt = target;
    } catch (e) {
      out.popupError = String(e);
    }
    await page.screenshot({ path: path.join(artifacts, `map-pages-${name}.png`) });
    report.map[name] = out;
    await context.close();
  }
  const phone = await browser.newContext({ viewport: VIEWPORTS.phone, locale: 'ko-KR' });
  const citizen = await phone.newPage();
  citizen.on('pageerror', (e) => report.pageErrors.push(String(e)));
  await citizen.goto(`${base}/citizen`);
  await citizen.waitForFunction(() => window.__ready === true && window.__mapIdle === true, null, { timeout: 45000 });
  report.citizen = { attribution: await citizen.$eval('.maplibregl-ctrl-attrib', attribution) };
  await phone.close();

  const context = await browser.newContext({ viewport: VIEWPORTS.desktop, locale: 'ko-KR' });
  const page = await context.newPage();
  await page.goto(`${base}/collections/bike_stations/items?f=html&lang=ko&limit=5`);
  report.items.headers = await page.$$eval('table th', (ths) => ths.map((th) => {
    const lh = parseFloat(getComputedStyle(th).lineHeight) || parseFloat(getComputedStyle(th).fontSize) * 1.2;
    const cs = getComputedStyle(th);
    const inner = th.getBoundingClientRect().height - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
    return { text: th.textContent, height: inner, lineHeight: lh };
  }));
  await context.close();
} catch (e) {
  report.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));
