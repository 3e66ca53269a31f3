// Citizen page (/citizen): bike stations, air quality and public facilities near a point the user picks.
import * as maplibregl from 'maplibre-gl';
import { BASE, LANG, tr, getJSON, el, featureTable, exposeMap, wireLangLinks, distanceM, fmtDistance } from './common.js';
import { estimateEntry, estimatesAt } from './surface_layer.js';

wireLangLinks();
const KEEP = new Set(['admin_areas', 'bike_stations', 'air_quality', 'facilities', 'roads', 'legal_dong']);  // + basemap
const CITY_HALL = [127.2890, 36.4800];   // 세종특별자치시청 (보람동)
const GRADE_RANK = { '좋음': 1, '보통': 2, '나쁨': 3, '매우나쁨': 4 };
const GRADE_EN = { '좋음': 'good', '보통': 'moderate', '나쁨': 'bad', '매우나쁨': 'very bad' };
const KIND = { library: ['도서관', 'library'], park: ['도시공원', 'park'], school: ['학교', 'school'],
  public_open_facility: ['개방 공공시설', 'public open facility'] };

const [layersDoc, style, collectionsDoc] = await Promise.all([
  getJSON(`${BASE}/map/layers.json`), getJSON(`${BASE}/styles/default`),
  getJSON(`${BASE}/collections?f=json&lang=${LANG}`)]);
const info = Object.fromEntries(layersDoc.layers.map((l) => [l.id, l]));
style.layers = style.layers.filter((l) => {
  const c = l.metadata && l.metadata['sejong:collection'];
  if (!c) return l.type === 'background';
  return KEEP.has(c) && l.id !== 'admin_areas-fill';
});
const layerIds = {};
for (const l of style.layers) {
  const c = l.metadata && l.metadata['sejong:collection'];
  if (c) (layerIds[c] ||= []).push(l.id);
}
window.__layerIds = layerIds;
const sources = [...new Set(
  collectionsDoc.collections.filter((c) => KEEP.has(c.id) && c.attribution).map((c) => c.attribution))];
document.getElementById('attribution').textContent = `${tr('자료 출처', 'Sources')}: ` + sources.join(' · ');
// one entry per source: the TileJSON joins every layer's attribution into one string, the style's own (empty)
// attribution overrides it; the control starts collapsed (MapLibre opens it when it first fills)
for (const src of Object.values(style.sources || {})) src.attribution = '';

const map = new maplibregl.Map({
  container: 'map', style, center: CITY_HALL, zoom: 14, localIdeographFontFamily: false,
  attributionControl: { compact: true, customAttribution: sources },
  canvasContextAttributes: { preserveDrawingBuffer: true }, maxZoom: 19,
});
exposeMap(map);
const collapseAttribution = () => {
  const box = map.getContainer().querySelector('.maplibregl-ctrl-attrib');
  if (box) { box.classList.remove('maplibregl-compact-show'); box.removeAttribute('open'); }
};
map.once('load', collapseAttribution);
map.once('idle', collapseAttribution);
map.addControl(new maplibregl.NavigationControl(), 'top-right');
map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');

function circle(center, radius, n = 64) {
  const pts = [];
  for (let i = 0; i <= n; i++) {
    const a = (i / n) * 2 * Math.PI;
    const dx = (radius * Math.cos(a)) / (111320 * Math.cos(center[1] * Math.PI / 180));
    const dy = (radius * Math.sin(a)) / 110574;
    pts.push([center[0] + dx, center[1] + dy]);
  }
  return pts;
}

function near(collection, lon, lat, radius, limit = 500) {
  const filter = `S_DWITHIN(geom, POINT(${lon.toFixed(6)} ${lat.toFixed(6)}), ${radius}, meters)`;
  return getJSON(`${BASE}/collections/${collection}/items?f=json&limit=${limit}&filter=${encodeURIComponent(filter)}`);
}

function withDistance(fc, here) {
  return fc.features.map((f) => ({ f, d: distanceM(here, f.geometry.coordinates) })).sort((a, b) => a.d - b.d);
}

let popup = null;
function showPopup(collection, f) {
  if (popup) popup.remove();
  const content = el('div', { class: 'feature-popup', 'data-collection': collection, 'data-fid': String(f.id) },
    el('h3', { text: f.properties.name || '' }), featureTable(info[collection], f));
  popup = new maplibregl.Popup({ maxWidth: '340px', focusAfterOpen: true }).setLngLat(f.geometry.coordinates)
    .setDOMContent(content).addTo(map);
  const body = popup.getElement().querySelector('.maplibregl-popup-content');
  if (body) body.scrollTop = 0;  // focusAfterOpen scrolls to the first focusable element; open at the top
  window.__popup = { collection, id: f.id, properties: f.properties };
}

function focusFeature(collection, f) {
  map.easeTo({ center: f.geometry.coordinates, zoom: Math.max(map.getZoom(), 15), duration: 0 });
  showPopup(collection, f);
}

function gradeBadge(grade, label, value) {
  const rank = GRADE_RANK[grade] || 0;
  const text = grade ? (LANG === 'en' ? GRADE_EN[grade] : grade) : tr('측정값 없음', 'no reading');
  return el('span', {}, `${label} `, el('span', { class: `grade g${rank}`, text }),
    value !== null && value !== undefined ? ` ${value} ㎍/㎥` : '');
}

// when the reading was taken (Korean time; hourly readings with their hour) and how long ago
function measuredNote(iso, now = Date.now()) {
  if (!iso) return tr('최근 측정값 없음', 'no recent reading');
  const t = new Date(iso).getTime();
  const kst = new Date(t + 9 * 3600e3).toISOString();
  const when = kst.slice(11, 16) === '00:00' ? kst.slice(0, 10) : `${kst.slice(0, 10)} ${kst.slice(11, 16)}`;
  const hours = Math.max(0, Math.floor((now - t) / 3600e3)), days = Math.floor(hours / 24);
  const age = days >= 1 ? tr(`${days}일 전`, `${days} day${days === 1 ? '' : 's'} ago`) : tr(`${hours}시간 전`, `${hours} h ago`);
  return tr(`${when} 측정, ${age}`, `measured ${when}, ${age}`);
}

function renderList(collection, items, line) {
  const sec = document.getElementById(`sec-${collection}`);
  sec.querySelector('.count').textContent = tr(`${items.length}곳`, `${items.length}`);
  const ul = sec.querySelector('.body');
  ul.replaceChildren();
  if (!items.length) ul.append(el('li', { text: tr('반경 안에 없습니다.', 'None within the radius.') }));
  for (const { f, d } of items.slice(0, 15)) {
    ul.append(el('li', {}, el('button', { type: 'button', 'data-fid': String(f.id), onclick: () => focusFeature(collection, f) },
      el('strong', { text: f.properties.name || '' }), ` · ${fmtDistance(d)}`, el('br'), line(f))));
  }
}

let seq = 0;
async function pick(lon, lat) {
  const my = ++seq;
  window.__results = null;
  if (popup) { popup.remove(); popup = null; }
  const radius = Number(document.getElementById('radius').value);
  const here = [lon, lat];
  map.getSource('pick').setData({ type: 'FeatureCollection', features: [
    { type: 'Feature', properties: { kind: 'area' }, geometry: { type: 'Polygon', coordinates: [circle(here, radius)] } },
    { type: 'Feature', properties: { kind: 'point' }, geometry: { type: 'Point', coordinates: here } }] });
  const ring = circle(here, radius, 16);
  const lons = ring.map((p) => p[0]), lats = ring.map((p) => p[1]);
  map.fitBounds([[Math.min(...lons), Math.min(...lats)], [Math.max(...lons), Math.max(...lats)]], { padding: 30, duration: 0 });
  document.getElementById('where').textContent = tr(`선택한 위치: ${lat.toFixed(5)}, ${lon.toFixed(5)} (반경 ${radius} m)`,
    `Selected point: ${lat.toFixed(5)}, ${lon.toFixed(5)} (radius ${radius} m)`);
  const [bikes, facilities, air, estimates] = await Promise.all([
    near('bike_stations', lon, lat, radius), near('facilities', lon, lat, radius), near('air_quality', lon, lat, 30000, 100),
    estimatesAt(collectionsDoc.collections, lon, lat)]);
  if (my !== seq) return;
  renderEstimates(estimates);
  const b = withDistance(bikes, here), fa = withDistance(facilities, here), aq = withDistance(air, here);
  renderList('bike_stations', b, (f) => tr(`자전거 ${f.properties.bikes ?? '-'}대 · 거치대 ${f.properties.docks ?? '정보 없음'}`,
    `${f.properties.bikes ?? '-'} bikes · docks ${f.properties.docks ?? 'n/a'}`));
  renderList('facilities', fa, (f) => (KIND[f.properties.kind] || [f.properties.kind_ko, f.properties.kind])[LANG === 'en' ? 1 : 0]);
  const airBody = document.querySelector('#sec-air_quality .body');
  airBody.replaceChildren();
  const best = aq.find((x) => x.f.properties.pm10_grade || x.f.properties.pm25_grade)
    || aq.find((x) => x.f.properties.measured_at) || aq[0];
  if (!best) airBody.append(el('p', { text: tr('30 km 안에 측정소가 없습니다.', 'No station within 30 km.') }));
  else {
    const p = best.f.properties;
    airBody.append(el('button', { type: 'button', 'data-fid': String(best.f.id), onclick: () => focusFeature('air_quality', best.f) },
      el('strong', { text: p.name || '' }), ` · ${fmtDistance(best.d)}`, el('br'),
      gradeBadge(p.pm10_grade, tr('미세먼지', 'PM10'), p.pm10), el('br'),
      gradeBadge(p.pm25_grade, tr('초미세먼지', 'PM2.5'), p.pm25), el('br'),
      el('span', { class: 'note', 'data-measured-at': p.measured_at || '', text: measuredNote(p.measured_at) })));
  }
  window.__results = { point: here, radius, bike_stations: b.map((x) => x.f.id), facilities: fa.map((x) => x.f.id),
    air_quality: best ? best.f.id : null };
}
window.__pick = pick;

// inside an air-quality surface: the estimate at the point (추정값) beside the nearest station's measurement
function renderEstimates(docs) {
  const sec = document.getElementById('sec-surface');
  sec.querySelector('.body').replaceChildren(...docs.map(estimateEntry));
  sec.hidden = !docs.length;
  window.__estimates = docs.map((d) => d.properties);
}
window.__renderEstimates = renderEstimates;

map.on('load', async () => {
  map.addSource('pick', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({ id: 'pick-area', type: 'fill', source: 'pick', filter: ['==', ['get', 'kind'], 'area'],
    paint: { 'fill-color': '#c0201a', 'fill-opacity': 0.06 } });
  map.addLayer({ id: 'pick-ring', type: 'line', source: 'pick', filter: ['==', ['get', 'kind'], 'area'],
    paint: { 'line-color': '#c0201a', 'line-width': 2, 'line-dasharray': [2, 1] } });
  map.addLayer({ id: 'pick-point', type: 'circle', source: 'pick', filter: ['==', ['get', 'kind'], 'point'],
    paint: { 'circle-color': '#c0201a', 'circle-radius': 7, 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } });
  map.on('click', (e) => pick(e.lngLat.lng, e.lngLat.lat));
  document.getElementById('search').addEventListener('submit', (e) => e.preventDefault());  // no inline handlers (CSP)
  document.getElementById('at-centre').addEventListener('click', () => { const c = map.getCenter(); pick(c.lng, c.lat); });
  document.getElementById('radius').addEventListener('change', () => {
    if (window.__results) pick(...window.__results.point);
  });
  document.getElementById('locate').addEventListener('click', () => {
    if (!navigator.geolocation) return;
    navigator.geolocation.getCurrentPosition((pos) => pick(pos.coords.longitude, pos.coords.latitude),
      () => { document.getElementById('where').textContent = tr('위치를 알 수 없습니다.', 'Location unavailable.'); },
      { timeout: 8000 });
  });
  const dongs = await getJSON(`${BASE}/collections/admin_areas/items?f=json&limit=100&properties=name`);
  const sel = document.getElementById('dong');
  const centres = {};
  for (const f of dongs.features.sort((a, b) => String(a.properties.name).localeCompare(String(b.properties.name), 'ko'))) {
    const xs = [], ys = [];
    JSON.stringify(f.geometry.coordinates).replace(/\[(-?[\d.]+),(-?[\d.]+)\]/g, (_, x, y) => { xs.push(+x); ys.push(+y); return ''; });
    centres[f.id] = [(Math.min(...xs) + Math.max(...xs)) / 2, (Math.min(...ys) + Math.max(...ys)) / 2];
    sel.append(el('option', { value: String(f.id), text: f.properties.name }));
  }
  sel.addEventListener('change', () => { if (sel.value) pick(...centres[sel.value]); });
  await pick(...CITY_HALL);
  window.__ready = true;
});
