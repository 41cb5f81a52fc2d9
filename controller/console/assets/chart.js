// A terminal's heartbeat history drawn as hand-made SVG (no chart library):
// a band of its state over time (online, playing, fault, offline), a band
// of its relay (amplifier power), and its volume as a step line. Every
// stretch has a <title>, and a sentence under the chart says the same in
// words, so nothing is told by colour alone.
import {h, s} from './dom.js';
import {t, time, percent} from './i18n.js';

const H = 150, left = 44, right = 8;
const bandY = 8, bandH = 22, relayY = 36, relayH = 8, volTop = 56, volBottom = 124;

// heartbeatChart draws points (oldest first; the first may lie before
// since) between since and until (Date).
export function heartbeatChart(points, since, until) {
  // Drawn at about the size it is shown, so that its text stays readable.
  const W = Math.round(Math.min(720, Math.max(320, window.innerWidth - 48)));
  const ticks = W < 500 ? 2 : 4;
  // A terminal newer than the span starts the axis at its first point.
  const first = points.length ? Date.parse(points[0].at) : 0;
  const t0 = Math.max(since.getTime(), Math.min(first, until.getTime() - 60000)), t1 = Math.max(until.getTime(), t0 + 60000);
  const x = (ms) => left + ((Math.min(Math.max(ms, t0), t1) - t0) / (t1 - t0)) * (W - left - right);
  const vy = (v) => volBottom - (v / 100) * (volBottom - volTop);
  const spans = []; // {from, to, p}
  points.forEach((p, i) => {
    const from = Date.parse(p.at);
    const to = i + 1 < points.length ? Date.parse(points[i + 1].at) : t1;
    if (to > t0 && from < t1) spans.push({from: Math.max(from, t0), to: Math.min(to, t1), p});
  });
  const kids = [];
  // Grid and time labels: four ticks.
  for (let i = 0; i <= ticks; i++) {
    const ms = t0 + ((t1 - t0) * i) / ticks;
    const label = time(new Date(ms).toISOString());
    kids.push(s('line', {x1: x(ms), x2: x(ms), y1: bandY, y2: volBottom, class: 'grid-line'}),
      s('text', {x: x(ms), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle'}, t1 - t0 > 36 * 3600e3 ? label.slice(5, 16) : label.slice(11, 16)));
  }
  for (const v of [0, 50, 100]) {
    kids.push(s('line', {x1: left, x2: W - right, y1: vy(v), y2: vy(v), class: 'grid-line'}),
      s('text', {x: left - 4, y: vy(v) + 4, 'text-anchor': 'end'}, String(v)));
  }
  kids.push(s('text', {x: left - 4, y: bandY + 15, 'text-anchor': 'end'}, t('chart.state')),
    s('text', {x: left - 4, y: relayY + 8, 'text-anchor': 'end'}, t('chart.relay')));
  // State and relay bands.
  for (const sp of spans) {
    const wd = Math.max(x(sp.to) - x(sp.from), 0.5);
    const tip = `${time(new Date(sp.from).toISOString())} – ${time(new Date(sp.to).toISOString())} ${t('tstate.' + sp.p.state)}`;
    kids.push(s('rect', {x: x(sp.from), y: bandY, width: wd, height: bandH, class: 'hb-' + sp.p.state, 'data-state': sp.p.state}, s('title', {}, tip)));
    if (sp.p.relay_on) kids.push(s('rect', {x: x(sp.from), y: relayY, width: wd, height: relayH, class: 'hb-relay'}, s('title', {}, tip + ' · ' + t('terminals.relay_on'))));
  }
  // Volume: a step line through the online stretches.
  let d = '';
  for (const sp of spans) {
    if (typeof sp.p.volume !== 'number') continue;
    d += `M${x(sp.from).toFixed(1)},${vy(sp.p.volume).toFixed(1)}H${x(sp.to).toFixed(1)}`;
  }
  if (d) kids.push(s('path', {d, class: 'hb-volume'}));
  kids.push(s('text', {x: left + 4, y: volTop + 12}, t('chart.volume')));
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'hbchart', role: 'img', id: 'heartbeat-chart', 'aria-label': summary(spans)}, kids);
  return h('figure', {class: 'hbfig'}, svg,
    h('figcaption', {class: 'legend', id: 'heartbeat-summary'}, legend(), ' ', summary(spans)));
}

function legend() {
  return ['idle', 'playing', 'fault', 'offline'].map((st) => h('span', {class: 'st st-' + st}, t('tstate.' + st)));
}

// summary says the history in words: the share online and the outages.
function summary(spans) {
  if (spans.length === 0) return t('chart.none');
  let online = 0, outages = 0, known = 0;
  spans.forEach((sp, i) => {
    known += sp.to - sp.from;
    if (sp.p.state !== 'offline') online += sp.to - sp.from;
    else if (i === 0 || spans[i - 1].p.state !== 'offline') outages++;
  });
  return t('chart.summary', {online: percent(known ? online / known : 0), outages});
}
