// Style preview (/styles/{id}?f=html): the style URL comes from the page's data-style attribute (no inline script).
import * as maplibregl from 'maplibre-gl';

const el = document.getElementById('map');
const map = new maplibregl.Map({container: 'map', style: el.dataset.style, hash: true,
  localIdeographFontFamily: false, canvasContextAttributes: {preserveDrawingBuffer: true}});
map.addControl(new maplibregl.NavigationControl());
window.__map = map; map.on('idle', () => { window.__mapIdle = true; });
