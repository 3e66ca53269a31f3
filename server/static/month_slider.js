// Month slider of a time-enabled layer on /map (population): shown while the layer is on; the chosen month becomes
// `datetime=YYYY-MM` on the layer's own tile source, so the tiles hold that month's 행정동 (default: the latest).
import { BASE, tr, el } from './common.js';

// an extent instant of a date column may carry the server's time-zone offset (2023-07-31T15:00:00Z for 2023-08-01
// in Asia/Seoul): the nearest calendar day's month
function monthOf(instant) {
  return new Date(Date.parse(instant) + 12 * 3600e3).toISOString().slice(0, 7);
}

function monthsBetween(firstInstant, lastInstant) {
  const first = monthOf(firstInstant);
  const last = monthOf(lastInstant);
  const out = [];
  let y = Number(first.slice(0, 4));
  let m = Number(first.slice(5, 7));
  const end = Number(last.slice(0, 4)) * 12 + Number(last.slice(5, 7));
  while (y * 12 + m <= end && out.length < 1200) {
    out.push(`${y}-${String(m).padStart(2, '0')}`);
    m += 1;
    if (m > 12) { m = 1; y += 1; }
  }
  return out;
}

// map: the MapLibre map; collection: its /collections entry; sourceId: the style's tile source of that layer
export function monthSlider(map, collection, sourceId) {
  const interval = collection?.extent?.temporal?.interval?.[0];
  const source = map.getSource(sourceId);
  if (!interval || !interval[0] || !interval[1] || !source || !source.setTiles) return null;
  const months = monthsBetween(interval[0], interval[1]);
  const label = el('label', { for: `month-${collection.id}`, id: `month-label-${collection.id}` });
  const input = el('input', { type: 'range', id: `month-${collection.id}`, min: '0', max: String(months.length - 1),
    step: '1', value: String(months.length - 1), 'data-collection': collection.id,
    'aria-valuetext': months[months.length - 1] });
  const box = el('div', { class: 'month-slider', id: `month-control-${collection.id}`, hidden: true }, label, input);
  const show = () => {
    const month = months[Number(input.value)];
    label.textContent = tr(`기준월: ${month}`, `Month: ${month}`);
    input.setAttribute('aria-valuetext', month);
    return month;
  };
  input.addEventListener('input', show);
  input.addEventListener('change', () => {
    const month = show();
    source.setTiles([`${BASE}/collections/${collection.id}/tiles/WebMercatorQuad/{z}/{y}/{x}?datetime=${month}`]);
    window.__month = month;
  });
  show();
  return { box, setVisible: (on) => { box.hidden = !on; } };
}
