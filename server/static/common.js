// Shared helpers of the map pages (our own code; MapLibre comes from the import map, vendored at setup).
export const CFG = JSON.parse(document.getElementById('cfg').textContent);
export const BASE = CFG.base;
export const LANG = CFG.lang === 'en' ? 'en' : 'ko';

export function tr(ko, en) { return LANG === 'en' ? en : ko; }

let extraHeaders = () => ({});
// Headers every getJSON adds for a URL (the /map sign-in: Authorization to this server).
export function useHeaders(fn) { extraHeaders = fn; }

export async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: 'application/json', ...extraHeaders(url) } });
  if (!r.ok) throw Object.assign(new Error(`${url}: HTTP ${r.status}`), { status: r.status });
  return r.json();
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function fmtValue(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return v.toLocaleString(LANG === 'en' ? 'en-US' : 'ko-KR', { maximumFractionDigits: 6 });
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// Attribute table of one feature from the features API, with Korean (or English) property titles.
export function featureTable(info, feature) {
  const props = { ...(feature.properties || {}) };
  const idName = info ? info.idProperty : 'id';
  if (!(idName in props) && feature.id !== undefined) props[idName] = feature.id;
  const known = info ? info.properties : Object.keys(props).map((n) => ({ name: n, ko: n, en: n }));
  const rows = [];
  for (const p of known) {
    const v = props[p.name];
    if (v === null || v === undefined || v === '') continue;
    rows.push(el('tr', { 'data-prop': p.name }, el('th', { scope: 'row', text: p[LANG] || p.name }),
      el('td', { 'data-value': typeof v === 'object' ? JSON.stringify(v) : String(v), text: fmtValue(v) })));
  }
  return el('table', {}, el('tbody', {}, ...rows));
}

// Hooks for people and tests: window.__map, window.__mapIdle, window.__waitIdle()
export function exposeMap(map) {
  window.__map = map;
  window.__mapIdle = false;
  map.on('idle', () => { window.__mapIdle = true; });
  map.on('movestart', () => { window.__mapIdle = false; });
  map.on('dataloading', () => { window.__mapIdle = false; });
  map.once('load', () => {   // on a phone the full attribution would cover the map: start collapsed (ⓘ opens it)
    if (window.innerWidth < 720) {
      for (const e of document.querySelectorAll('.maplibregl-ctrl-attrib.maplibregl-compact-show')) {
        e.classList.remove('maplibregl-compact-show');
        e.removeAttribute('open');
      }
    }
  });
  window.__waitIdle = () => new Promise((resolve) => { map.once('idle', () => resolve(true)); map.triggerRepaint(); });
}

export function distanceM(a, b) {
  const R = 6371008.8, rad = Math.PI / 180;
  const dLat = (b[1] - a[1]) * rad, dLon = (b[0] - a[0]) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}

export function fmtDistance(m) {
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`;
}

// Keep ?lang= in sync with the language links while preserving the map position in the hash
export function wireLangLinks() {
  for (const a of document.querySelectorAll('a.lang-switch')) {
    a.addEventListener('click', (ev) => {
      ev.preventDefault();
      const u = new URL(window.location.href);
      u.searchParams.set('lang', a.dataset.lang);
      window.location.href = u.toString();
    });
  }
}
