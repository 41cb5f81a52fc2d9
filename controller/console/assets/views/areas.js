// Area tree with live state colours, and a plot of the terminals that have
// a location (an SVG of their coordinates; no tile server is needed).
import {h, s, mount} from '../dom.js';
import {t} from '../i18n.js';
import {termState, stateLabel} from '../model.js';
import {areaTree, updateState} from '../tree.js';

export async function render(main, app, params) {
  const {areas, terminals} = await app.load();
  const treeEl = areaTree(areas, terminals, {id: 'area-tree'});
  const mapEl = plot(areas, terminals);
  mount(main,
    h('h1', {}, t('areas.title')),
    h('div', {class: 'grid cols-2'},
      h('section', {class: 'panel', 'aria-labelledby': 'h-tree'}, h('h2', {id: 'h-tree'}, t('areas.tree')), treeEl),
      h('section', {class: 'panel', 'aria-labelledby': 'h-map'}, h('h2', {id: 'h-map'}, t('areas.map')), mapEl,
        h('div', {class: 'legend'}, ['idle', 'playing', 'fault', 'offline'].map((st) => stateLabel(st))))));
  if (params[0]) {
    const node = treeEl.querySelector(`[data-area="${CSS.escape(params[0])}"]`);
    if (node) node.scrollIntoView({block: 'center'});
  }
  app.on('terminal', (e) => {
    const d = e.data;
    const term = terminals.get(d.id);
    if (!term) return;
    term.state = d.state;
    updateState(main, d.id, termState(term));
    for (const c of main.querySelectorAll(`circle[data-terminal="${CSS.escape(d.id)}"]`)) c.setAttribute('class', 'dot-' + termState(term));
  });
}

// plot draws terminals at their coordinates, north up, with a grid of
// latitude and longitude lines.
function plot(areas, terminals) {
  const pts = [...terminals.values()].filter((x) => x.status !== 'revoked' && typeof x.latitude === 'number' && typeof x.longitude === 'number');
  if (pts.length === 0) return h('p', {class: 'empty', id: 'area-map'}, t('areas.no_coordinates'));
  let [minLat, maxLat, minLon, maxLon] = [90, -90, 180, -180];
  for (const p of pts) {
    minLat = Math.min(minLat, p.latitude); maxLat = Math.max(maxLat, p.latitude);
    minLon = Math.min(minLon, p.longitude); maxLon = Math.max(maxLon, p.longitude);
  }
  const pad = Math.max(0.005, (maxLat - minLat) * 0.08, (maxLon - minLon) * 0.08);
  minLat -= pad; maxLat += pad; minLon -= pad; maxLon += pad;
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const W = 800, H = Math.max(260, Math.min(560, Math.round(W * (maxLat - minLat) / ((maxLon - minLon) * k))));
  const x = (lon) => ((lon - minLon) / (maxLon - minLon)) * W;
  const y = (lat) => ((maxLat - lat) / (maxLat - minLat)) * H;
  const step = niceStep(Math.max(maxLat - minLat, maxLon - minLon) / 4);
  const grid = [];
  for (let v = Math.ceil(minLon / step) * step; v <= maxLon; v += step) {
    grid.push(s('line', {class: 'grid-line', x1: x(v), x2: x(v), y1: 0, y2: H}), s('text', {x: x(v) + 3, y: H - 4}, v.toFixed(2) + '°E'));
  }
  for (let v = Math.ceil(minLat / step) * step; v <= maxLat; v += step) {
    grid.push(s('line', {class: 'grid-line', x1: 0, x2: W, y1: y(v), y2: y(v)}), s('text', {x: 3, y: y(v) - 3}, v.toFixed(2) + '°N'));
  }
  const labels = pts.length <= 40;
  return s('svg', {class: 'map', id: 'area-map', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': t('areas.map_label', {n: pts.length})},
    grid,
    pts.map((p) => s('a', {href: '#/terminals/' + p.id, 'aria-label': `${p.name} ${t('tstate.' + termState(p))}`},
      s('circle', {cx: x(p.longitude), cy: y(p.latitude), r: 9, class: 'dot-' + termState(p), 'data-terminal': p.id},
        s('title', {}, `${areas.path(p.area_code)} ${p.name}：${t('tstate.' + termState(p))}`)),
      labels ? s('text', {x: x(p.longitude) + (x(p.longitude) > W * 0.8 ? -12 : 12), y: y(p.latitude) + 4,
        'text-anchor': x(p.longitude) > W * 0.8 ? 'end' : 'start'}, p.name) : null)));
}

function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw || 0.01)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}
