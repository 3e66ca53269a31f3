// Signs in to /map through the real test OpenID provider (its authorize form) in headless Chromium and prints one
// JSON report: the layer list before, after signing in and after signing out, the requests and what was stored.
// usage: node signin.mjs BASE_URL ARTIFACTS_DIR ASSETS_DIR SUBJECT
import { createRequire } from 'node:module';
import path from 'node:path';

const [base, artifacts, assetsDir, subject] = process.argv.slice(2);
const require = createRequire(path.resolve(assetsDir, 'package.json'));
const { chromium } = require('playwright-core');

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];
const report = { requests: [], failed: [], console: [], pageErrors: [] };

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: FLAGS,
  headless: true });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, locale: 'ko-KR' });
  context.on('request', (r) => report.requests.push({ url: r.url(), authorization: r.headers().authorization || null,
    from: r.frame().url() }));
  context.on('response', (r) => { if (r.status() >= 400) report.failed.push(`${r.status()} ${r.url()}`); });
  const page = await context.newPage();
  page.on('console', (m) => {   // errors of our pages (the provider's form loads its CSS from a CDN)
    if (m.type() === 'error' && page.url().startsWith(base)) report.console.push(`${m.text()} ${m.location().url}`);
  });
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));
  const ready = () => page.waitForFunction(() => window.__ready === true && window.__mapIdle === true, null,
    { timeout: 45000 });
  const layerList = () => page.$$eval('#layer-list input[type=checkbox]', (xs) => xs.map((x) => x.dataset.collection));

  await page.goto(`${base}/map#12/36.48/127.289`);
  await ready();
  report.anonymous = { layers: await layerList(), button: await page.$eval('#sign-in', (b) => b.textContent) };

  await page.click('#sign-in');
  await page.waitForSelector('#subject-input', { timeout: 15000 });   // the provider's authorize form
  report.authorizeUrl = page.url();
  await page.fill('#subject-input', subject);
  await Promise.all([page.waitForURL((u) => u.toString().startsWith(`${base}/map`), { timeout: 15000 }),
    page.click('form:has(#subject-input) button[type=submit]')]);
  await page.waitForFunction(() => !window.location.search.includes('code='), null, { timeout: 15000 });
  await ready();
  report.signedIn = {
    url: page.url(),
    layers: await layerList(),
    who: await page.$eval('#signed-in-as', (x) => x.textContent),
    session: await page.evaluate(() => Object.keys(sessionStorage)),
    local: await page.evaluate(() => Object.keys(localStorage)),
  };
  // the internal layer is drawn from its vector tiles, fetched with the token
  await page.evaluate(() => window.__map.jumpTo({ center: [127.2890, 36.4800], zoom: 15 }));
  await page.evaluate(() => window.__waitIdle());
  if (!(await page.isChecked('#toggle-cctv'))) await page.click('#toggle-cctv');
  await page.evaluate(() => window.__waitIdle());
  report.signedIn.cctvRendered = await page.evaluate(() => {
    const ids = window.__layerIds.cctv.filter((id) => window.__map.getLayer(id));
    return ids.length ? window.__map.queryRenderedFeatures({ layers: ids }).length : -1;
  });
  await page.screenshot({ path: path.join(artifacts, 'map-signed-in.png') });

  await Promise.all([page.waitForNavigation(), page.click('#sign-out')]);
  await ready();
  report.signedOut = { layers: await layerList(), session: await page.evaluate(() => Object.keys(sessionStorage)),
    button: await page.$('#sign-in') !== null };
} catch (err) {
  report.error = String(err && err.stack || err);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));
