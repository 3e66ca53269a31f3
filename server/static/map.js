// Department viewer (/map): layer list from /collections, legend from the style, attributes from the features API.
import * as maplibregl from 'maplibre-gl';
import { BASE, LANG, tr, getJSON, el, featureTable, exposeMap, wireLangLinks, useHeaders } from './common.js';
import { authHeaders, completeSignIn, session, signIn, signOut } from './signin.js';
import { monthSlider } from './month_slider.js';
import { isCoverage, surfaceLayers } from './surface_layer.js';

wireLangLinks();
const COLLECTION = 'sejong:collection';
const PALETTE = ['#6a1b9a', '#00695c', '#ad1457', '#283593', '#4e342e', '#00838f', '#558b2f'];

// signed in: every request for data to this server carries the token (features, tiles, styles)
useHeaders(authHeaders);
let signInError = null;
try {
  if (await completeSignIn()) await new Promise(() => {});  // back from the provider: /map reloads signed in
} catch (err) {
  signInError = err;
}

let docs;
try {
  docs = await Promise.all([
    getJSON(`${BASE}/collections?f=json&lang=${LANG}`),
    getJSON(`${BASE}/map/layers.json`),
    getJSON(`${BASE}/styles/default`),
  ]);
} catch (err) {
  if (err.status === 401 && session()) signOut();  // the token expired or was refused: continue signed out
  throw err;
}
const [collectionsDoc, layersDoc, style] = docs;
renderSignIn(layersDoc.signIn);
// the layer list holds the feature collections; the coverage collections (air-quality surfaces) have their own control
const collections = collectionsDoc.collections.filter((c) => c.itemType === 'feature');
const surfaces = collectionsDoc.collections.filter(isCoverage);
const info = Object.fromEntries(layersDoc.layers.map((l) => [l.id, l]));

// style layers per collection (from the style's metadata)
const styleLayers = {};
const layerCollection = {};
const interactive = new Set();
for (const lyr of style.layers) {
  const c = lyr.metadata && lyr.metadata[COLLECTION];
  if (!c) continue;
  (styleLayers[c] ||= []).push(lyr);
  layerCollection[lyr.id] = c;
  if (lyr.metadata['sejong:interactive']) interactive.add(lyr.id);
}
// the basemap (roads, 법정동): one background group in the layer list, toggled as a whole or per layer
const basemap = new Set(style.layers.filter((l) => l.metadata && l.metadata['sejong:basemap'])
  .map((l) => l.metadata[COLLECTION]));

// attribution: one entry per source. Each tile source's TileJSON joins the attributions of all its layers into
// one string (so sources repeated inside it); a style source's own `attribution` overrides the TileJSON's, so the
// style's sources carry none and every collection's attribution is listed once.
for (const src of Object.values(style.sources || {})) src.attribution = '';
const allAttr = [...new Set(collections.filter((c) => c.attribution).map((c) => c.attribution))];

const map = new maplibregl.Map({
  container: 'map', style, hash: true, localIdeographFontFamily: false, attributionControl: false,
  transformRequest: (url) => ({ url, headers: authHeaders(url) }),
  canvasContextAttributes: { preserveDrawingBuffer: true }, maxZoom: 19,
});
exposeMap(map);
map.addControl(new maplibregl.NavigationControl(), 'top-right');
map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
const attribution = new maplibregl.AttributionControl({ compact: true, customAttribution: allAttr });
map.addControl(attribution, 'bottom-right');
// MapLibre opens a compact attribution the first time it fills; start collapsed (the (i) button opens it)
const collapseAttribution = () => {
  const box = map.getContainer().querySelector('.maplibregl-ctrl-attrib');
  if (box) { box.classList.remove('maplibregl-compact-show'); box.removeAttribute('open'); }
};
map.once('load', collapseAttribution);
map.once('idle', collapseAttribution);

// Sign-in button, or who is signed in and sign-out (only when the server names an OpenID provider)
function renderSignIn(cfg) {
  const s = session();
  if (!cfg && !s) return;
  const box = el('span', { class: 'signin', id: 'signin' });
  if (s) {
    box.append(el('span', { id: 'signed-in-as', text: tr(`${s.name} 님`, `Signed in: ${s.name}`) }), ' ',
      el('button', { type: 'button', id: 'sign-out', onclick: signOut, text: tr('로그아웃', 'Sign out') }));
  } else {
    const failed = el('span', { class: 'note', id: 'signin-error', role: 'alert',
      text: signInError ? tr(`로그인 실패: ${signInError.message}`, `Sign-in failed: ${signInError.message}`) : '' });
    box.append(el('button', { type: 'button', id: 'sign-in', text: tr('로그인', 'Sign in'), onclick: () => {
      signIn(cfg.issuer, cfg.clientId, LANG).catch((err) => { failed.textContent = String(err.message || err); });
    } }), ' ', failed);
  }
  document.querySelector('header.top nav').append(box);
}

// a download link cannot carry the token: signed in, fetch the file and save it
function download(ev) {
  if (!session()) return;
  ev.preventDefault();
  const a = ev.currentTarget;
  fetch(a.href, { headers: authHeaders(a.href) })
    .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((blob) => {
      const url = URL.createObjectURL(blob);
      el('a', { href: url, download: a.getAttribute('download') }).click();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    });
}

const state = {};   // collection id -> {visible, layerIds}
const sliders = {};  // time-enabled collection with its own tile source in the style -> its month slider
window.__layerIds = {};

function titleOf(c) { return (info[c.id] && info[c.id].title[LANG]) || c.title || c.id; }

function addGenericLayers(c) {
  // a collection with no style of its own (e.g. a new process result): GeoJSON from the features API
  const src = `geo-${c.id}`;
  if (map.getSource(src)) return;
  const color = PALETTE[Object.keys(state).indexOf(c.id) % PALETTE.length];
  map.addSource(src, { type: 'geojson', data: `${BASE}/collections/${c.id}/items?f=json&limit=5000`,
    attribution: c.attribution || undefined });
  const ids = [`${c.id}-geo-fill`, `${c.id}-geo-line`, `${c.id}-geo-circle`];
  map.addLayer({ id: ids[0], type: 'fill', source: src, filter: ['==', ['geometry-type'], 'Polygon'],
    paint: { 'fill-color': color, 'fill-opacity': 0.35 } });
  map.addLayer({ id: ids[1], type: 'line', source: src, paint: { 'line-color': color, 'line-width': 1.5 },
    filter: ['in', ['geometry-type'], ['literal', ['Polygon', 'LineString']]] });
  map.addLayer({ id: ids[2], type: 'circle', source: src, filter: ['==', ['geometry-type'], 'Point'],
    paint: { 'circle-color': color, 'circle-radius': 5, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1 } });
  for (const id of ids) { layerCollection[id] = c.id; interactive.add(id); }
  state[c.id].layerIds = ids;
  state[c.id].color = color;
  window.__layerIds[c.id] = ids;
}

function setVisible(c, on) {
  const s = state[c.id];
  if (on && !s.layerIds.length) addGenericLayers(c);
  s.visible = on;
  sliders[c.id]?.setVisible(on);
  for (const id of s.layerIds) if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
  renderLegend();
  renderDownloads();
}

async function fitTo(c) {
  const doc = await getJSON(`${BASE}/collections/${c.id}?f=json`);
  const b = doc.extent && doc.extent.spatial && doc.extent.spatial.bbox && doc.extent.spatial.bbox[0];
  if (!b) return;
  const minz = (info[c.id] && info[c.id].minzoom) || 0;
  map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 40, maxZoom: 16, duration: 0 });
  if (map.getZoom() < minz) map.jumpTo({ zoom: minz + 0.5 });
}

function renderLayerList() {
  const ul = document.getElementById('layer-list');
  ul.replaceChildren(...collections.filter((c) => !basemap.has(c.id)).map(layerRow));
  const members = collections.filter((c) => basemap.has(c.id));
  if (members.length) {
    const all = el('input', { type: 'checkbox', id: 'toggle-basemap' });
    all.checked = members.some((c) => state[c.id].visible);
    all.addEventListener('change', () => {
      for (const c of members) {
        setVisible(c, all.checked);
        document.getElementById(`toggle-${c.id}`).checked = all.checked;
      }
    });
    ul.append(el('li', { class: 'layer-group', id: 'basemap-group' },
      el('div', { class: 'layer-row' }, all, el('label', { for: 'toggle-basemap', text: tr('배경지도', 'Basemap') })),
      el('ul', { class: 'plain', style: 'padding-left:1.2rem' }, ...members.map(layerRow))));
  }
  updateHints();
}

function layerRow(c) {
  const s = state[c.id];
  const box = el('input', { type: 'checkbox', id: `toggle-${c.id}`, 'data-collection': c.id });
  box.checked = s.visible;
  box.addEventListener('change', () => setVisible(c, box.checked));
  const minz = info[c.id] && info[c.id].minzoom;
  const hint = el('span', { class: 'hint', id: `hint-${c.id}`, hidden: true,
    text: tr(`확대하면 보입니다 (줌 ${minz} 이상)`, `zoom in to see it (zoom ${minz}+)`) });
  return el('li', { class: 'layer-row' }, box,
    el('label', { for: `toggle-${c.id}`, text: titleOf(c) }),
    el('button', { type: 'button', 'data-fit': c.id, title: tr('이 레이어 범위로 이동', 'zoom to this layer'),
      onclick: () => { if (!box.checked) { box.checked = true; setVisible(c, true); } fitTo(c); } },
    tr('범위로', 'Fit')),
    minz ? hint : null);
}

function updateHints() {
  const z = map.getZoom();
  for (const c of collections) {
    const h = document.getElementById(`hint-${c.id}`);
    const minz = info[c.id] && info[c.id].minzoom;
    if (h) h.hidden = !(state[c.id].visible && minz && z < minz);
  }
}

function legendEntries(cid) {
  const seen = new Set();
  const out = [];
  for (const lyr of styleLayers[cid] || []) {
    for (const e of (lyr.metadata['sejong:legend'] || [])) {
      const key = `${e.ko}|${e.color}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(e);
    }
  }
  return out;
}

function renderLegend() {
  const box = document.getElementById('legend');
  box.replaceChildren();
  for (const c of collections) {
    const s = state[c.id];
    if (!s.visible) continue;
    let entries = legendEntries(c.id);
    if (!entries.length) entries = [{ ko: titleOf(c), en: titleOf(c), color: s.color || '#555', kind: 'fill' }];
    const items = entries.map((e) => e.kind === 'note'
      ? el('div', { class: 'note', text: e[LANG] })
      : el('div', { class: 'legend-item' },
        el('span', { class: `sw ${e.kind}`, style: e.kind === 'line' ? `border-top-color:${e.color}`
          : `background:${e.color}${e.size ? `;width:${e.size * 2}px;height:${e.size * 2}px` : ''}` }),
        el('span', { text: e[LANG] })));
    box.append(el('div', { class: 'legend-block', 'data-collection': c.id }, el('h3', { text: titleOf(c) }), ...items));
  }
}

function bboxParam() {
  const b = map.getBounds();
  const r = (v) => v.toFixed(6);
  return `${r(b.getWest())},${r(b.getSouth())},${r(b.getEast())},${r(b.getNorth())}`;
}

function renderDownloads() {
  const ul = document.getElementById('downloads');
  ul.replaceChildren();
  const bbox = bboxParam();
  for (const c of collections) {
    if (!state[c.id].visible) continue;
    const q = `bbox=${bbox}&limit=10000`;
    ul.append(el('li', { 'data-collection': c.id }, el('span', { text: `${titleOf(c)}: ` }),
      el('a', { href: `${BASE}/collections/${c.id}/items?f=json&${q}`, download: `${c.id}.geojson`,
        class: 'dl-geojson', text: 'GeoJSON', onclick: download }), ' · ',
      el('a', { href: `${BASE}/map/download/${c.id}.csv?${q}`, download: `${c.id}.csv`, class: 'dl-csv',
        text: 'CSV', onclick: download })));
  }
}

function renderSources() {
  const ul = document.getElementById('sources');
  ul.replaceChildren();
  for (const c of collections) {
    if (!c.attribution) continue;
    ul.append(el('li', { 'data-collection': c.id }, el('strong', { text: `${titleOf(c)}: ` }),
      el('span', { text: c.attribution })));
  }
}

// click a feature -> its attributes from the features API
let popup = null;
map.on('click', async (e) => {
  const pad = 5;
  const layers = [...interactive].filter((id) => map.getLayer(id) && state[layerCollection[id]]?.visible);
  const feats = map.queryRenderedFeatures([[e.point.x - pad, e.point.y - pad], [e.point.x + pad, e.point.y + pad]],
    { layers });
  if (!feats.length) return;
  const f = feats[0];
  const cid = layerCollection[f.layer.id];
  const fid = (f.properties && f.properties.id !== undefined) ? f.properties.id : f.id;
  await showFeature(cid, fid, e.lngLat);
});

async function showFeature(cid, fid, lngLat) {
  if (popup) popup.remove();
  window.__popup = null;
  const feature = await getJSON(`${BASE}/collections/${cid}/items/${encodeURIComponent(fid)}?f=json`);
  const c = collections.find((x) => x.id === cid);
  const content = el('div', { class: 'feature-popup', 'data-collection': cid, 'data-fid': String(fid) },
    el('h3', { text: `${titleOf(c || { id: cid })}` }), featureTable(info[cid], feature),
    el('a', { href: `${BASE}/collections/${cid}/items/${encodeURIComponent(fid)}?f=html&lang=${LANG}`,
      text: tr('상세 페이지', 'details page') }));
  const width = Math.min(380, map.getContainer().clientWidth - 24);
  popup = new maplibregl.Popup({ maxWidth: `${width}px`, focusAfterOpen: true }).setLngLat(lngLat)
    .setDOMContent(content).addTo(map);
  fitPopup(popup);
  window.__popup = { collection: cid, id: fid, properties: feature.properties };
}
window.__showFeature = showFeature;

// open at the top (focusAfterOpen scrolls to the first focusable element, the link at the bottom) and pan the
// map so the whole popup is inside it (on a phone the map is half the screen)
function fitPopup(p) {
  const body = p.getElement().querySelector('.maplibregl-popup-content');
  if (body) {
    body.style.maxHeight = `${Math.max(120, Math.min(340, map.getContainer().clientHeight - 40))}px`;
    body.scrollTop = 0;
  }
  const margin = 8;
  for (let pass = 0; pass < 2; pass++) {   // panning may re-anchor the popup once
    const box = p.getElement().getBoundingClientRect();
    const frame = map.getContainer().getBoundingClientRect();
    const dx = box.left < frame.left + margin ? box.left - frame.left - margin
      : box.right > frame.right - margin ? box.right - frame.right + margin : 0;
    const dy = box.top < frame.top + margin ? box.top - frame.top - margin
      : box.bottom > frame.bottom - margin ? box.bottom - frame.bottom + margin : 0;
    if (!dx && !dy) break;
    map.panBy([dx, dy], { duration: 0 });
  }
}

map.on('load', () => {
  for (const c of collections) {
    const ids = (styleLayers[c.id] || []).map((l) => l.id);
    const visible = ids.length > 0 && ids.some((id) => (map.getLayoutProperty(id, 'visibility') || 'visible') === 'visible');
    state[c.id] = { visible, layerIds: ids };
    window.__layerIds[c.id] = ids;
  }
  if (!window.location.hash) {
    const b = collections.find((c) => c.id === 'admin_areas')?.extent?.spatial?.bbox?.[0];
    if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 20, duration: 0 });
  }
  renderLayerList();
  for (const c of collections) {  // a month slider where the style gives the collection a tile source of its own
    const slider = map.getSource(c.id) ? monthSlider(map, c, c.id) : null;
    if (!slider) continue;
    sliders[c.id] = slider;
    document.getElementById('time-controls').append(slider.box);
    slider.setVisible(state[c.id].visible);
  }
  surfaceLayers(map, surfaces, document.getElementById('surface-controls'));
  renderLegend();
  renderDownloads();
  renderSources();
  for (const id of interactive) {
    map.on('mouseenter', id, () => { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', id, () => { map.getCanvas().style.cursor = ''; });
  }
  window.__interactive = [...interactive];
  window.__ready = true;
});
map.on('moveend', () => { renderDownloads(); updateHints(); });
