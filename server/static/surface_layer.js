// Air-quality surfaces on /map and /citizen: the coverage collections of /collections (dataType "coverage").
// /map: a raster layer of the grade-coloured PNG tiles (under the vector layers, off by default), a slider over
// the surface's days (or hours, for the *_hourly collections) and a legend saying how it was made and its leave-one-station-out error.
// /citizen: the estimate at a point from /collections/{id}/position, labelled as an estimate (추정값).
import { BASE, LANG, tr, el, getJSON } from './common.js';

export const METHOD = { idw: ['역거리가중 (IDW)', 'inverse distance weighting (IDW)'],
  kriging: ['정규 크리깅', 'ordinary kriging'], nearest: ['가장 가까운 측정소', 'nearest station'] };
const GRADE_EN = { '좋음': 'good', '보통': 'moderate', '나쁨': 'bad', '매우나쁨': 'very bad' };
const POLLUTANT = { pm10: ['미세먼지 (PM10)', 'PM10'], pm25: ['초미세먼지 (PM2.5)', 'PM2.5'] };

export function methodName(m) { return (METHOD[m] || [m, m])[LANG === 'en' ? 1 : 0]; }

export function isCoverage(c) { return c.dataType === 'coverage' && !!c.surface; }

function tileUrl(id, day) {
  return `${BASE}/collections/${id}/map/tiles/WebMercatorQuad/{z}/{y}/{x}?datetime=${encodeURIComponent(day)}`;
}

// how the surface was made and its cross-validated error, one line each
export function surfaceNotes(c) {
  const s = c.surface;
  const err = (s.validation && s.validation.pooled && s.validation.pooled[s.method]) || {};
  const km = (s.max_distance_m / 1000).toLocaleString(LANG === 'en' ? 'en' : 'ko');
  return [
    tr(`방법: ${methodName(s.method)}, 격자 ${s.cell_m} m, 측정소에서 최대 ${km} km (그 밖은 표시하지 않음)`,
      `Method: ${methodName(s.method)}, ${s.cell_m} m cells, at most ${km} km from a station (blank beyond)`),
    tr(`교차검증 오차 (측정소 하나씩 빼고): RMSE ${err.rmse} ${s.unit}, MAE ${err.mae} ${s.unit}`,
      `Cross-validated error (leave one station out): RMSE ${err.rmse} ${s.unit}, MAE ${err.mae} ${s.unit}`),
    tr(`측정값이 아닌 추정값입니다 (측정소 ${s.stations}곳).`, `An estimate, not a measurement (${s.stations} stations).`),
  ];
}

// map: the MapLibre map (loaded); colls: the coverage collections; box: where the controls go
export function surfaceLayers(map, colls, box) {
  if (!box) return;
  const thematic = map.getStyle().layers.find((l) => l.metadata && l.metadata['sejong:collection']
    && !l.metadata['sejong:basemap']);
  for (const c of colls) {
    const days = (c.extent && c.extent.temporal && c.extent.temporal.values) || [];
    if (!days.length) continue;
    const src = `surface-${c.id}`;
    const b = c.extent.spatial && c.extent.spatial.bbox && c.extent.spatial.bbox[0];
    map.addSource(src, { type: 'raster', tiles: [tileUrl(c.id, days[days.length - 1])], tileSize: 256,
      ...(b ? { bounds: b } : {}) });
    map.addLayer({ id: `${src}-raster`, type: 'raster', source: src, layout: { visibility: 'none' },
      paint: { 'raster-opacity': 0.7, 'raster-fade-duration': 0 } }, thematic ? thematic.id : undefined);
    const toggle = el('input', { type: 'checkbox', id: `toggle-surface-${c.id}`, 'data-surface': c.id });
    const label = el('label', { for: `day-${c.id}`, id: `day-label-${c.id}` });
    const slider = el('input', { type: 'range', id: `day-${c.id}`, min: '0', max: String(days.length - 1), step: '1',
      value: String(days.length - 1), 'data-surface': c.id, 'aria-valuetext': days[days.length - 1] });
    const legend = el('div', { class: 'legend-block surface-legend', id: `surface-legend-${c.id}`,
      'data-surface': c.id },
    ...c.surface.legend.map((g) => el('div', { class: 'legend-item' },
      el('span', { class: 'sw fill', style: `background:${g.colour}` }),
      el('span', { text: `${g[LANG]} (${g.max === null ? `${g.min}+` : `${g.min}–${g.max}`} ${c.surface.unit})` }))),
    ...surfaceNotes(c).map((t) => el('p', { class: 'note', text: t })));
    const controls = el('div', { class: 'surface-controls', hidden: true }, label, slider, legend);
    const showDay = () => {
      const day = days[Number(slider.value)];
      // hourly collections step through hours (KST instants, shown as YYYY-MM-DD HH:00)
      const hour = day.length > 10 ? `${day.slice(0, 10)} ${day.slice(11, 16)}` : null;
      label.textContent = hour ? tr(`시각: ${hour} (KST)`, `Hour: ${hour} (KST)`) : tr(`날짜: ${day}`, `Day: ${day}`);
      slider.setAttribute('aria-valuetext', day);
      return day;
    };
    slider.addEventListener('input', showDay);
    slider.addEventListener('change', () => {
      const day = showDay();
      map.getSource(src).setTiles([tileUrl(c.id, day)]);
      window.__surfaceDay = day;
    });
    toggle.addEventListener('change', () => {
      map.setLayoutProperty(`${src}-raster`, 'visibility', toggle.checked ? 'visible' : 'none');
      controls.hidden = !toggle.checked;
    });
    showDay();
    box.append(el('div', { class: 'surface', 'data-surface': c.id },
      el('div', { class: 'layer-row' }, toggle, el('label', { for: `toggle-surface-${c.id}`, text: c.title })),
      controls));
  }
}

function inside(c, lon, lat) {
  const b = c.extent && c.extent.spatial && c.extent.spatial.bbox && c.extent.spatial.bbox[0];
  return !!b && lon >= b[0] && lon <= b[2] && lat >= b[1] && lat <= b[3];
}

// the /position answer as a panel entry: the estimate (추정값) beside the nearest station's measurement
export function estimateEntry(doc) {
  const p = doc.properties;
  const name = (POLLUTANT[p.pollutant] || [p.pollutant, p.pollutant])[LANG === 'en' ? 1 : 0];
  const st = p.nearest_station;
  const est = p.estimate === null
    ? tr(`추정값 없음 (${p.reason === 'outside the surface' ? '추정 지도 밖' : '측정소에서 너무 멂'})`,
      `no estimate (${p.reason})`)
    : tr(`추정값 ${p.estimate} ${p.unit} (${p.grade})`, `Estimate ${p.estimate} ${p.unit} (${GRADE_EN[p.grade] || p.grade})`);
  const meas = st
    ? tr(`측정값: ${st.name} ${st.value} ${p.unit} (${st.grade}, ${st.distance_m.toLocaleString('ko')} m)`,
      `Measured: ${st.name} ${st.value} ${p.unit} (${GRADE_EN[st.grade] || st.grade}, ${st.distance_m.toLocaleString('en')} m away)`)
    : tr('측정값: 그날 측정한 측정소 없음', 'Measured: no station reading that day');
  return el('div', { class: 'estimate', 'data-estimate': p.collection },
    el('strong', { text: `${name} · ${p.date}` }), el('br'),
    el('span', { class: 'estimate-value', text: est }), el('br'),
    el('span', { class: 'measured-value', text: meas }), el('br'),
    el('span', { class: 'note', text: tr(`추정 방법: ${methodName(p.method)}, 교차검증 RMSE ${p.cv_rmse} / MAE ${p.cv_mae}`,
      `Method: ${methodName(p.method)}, cross-validated RMSE ${p.cv_rmse} / MAE ${p.cv_mae}`) }));
}

// the estimates of every surface whose extent holds the point (an empty list outside them all)
export async function estimatesAt(colls, lon, lat) {
  const here = colls.filter((c) => isCoverage(c) && inside(c, lon, lat));
  const docs = await Promise.all(here.map((c) => getJSON(
    `${BASE}/collections/${c.id}/position?coords=${encodeURIComponent(`POINT(${lon} ${lat})`)}`).catch(() => null)));
  return docs.filter(Boolean);
}
