// What the console shows about the county's things: labels and colours of
// levels and states, and the area tree as the signed-in user may see it.
import {h} from './dom.js';
import {t, label} from './i18n.js';

export const levels = [1, 2, 3, 4];

export const levelBadge = (level) => h('span', {class: `badge lv${level || 0}`}, t(`level.${level || 0}`));

export const drillBadge = (a) => (a.drill || a.msg_type >= 3 ? h('span', {class: 'badge drill'}, t('drill.badge')) : null);

// termState is a terminal's live state: idle, playing, fault or offline.
export function termState(term) {
  if (term.status && term.status !== 'active') return 'offline';
  return ['idle', 'playing', 'fault'].includes(term.state) ? term.state : 'offline';
}

export const stateLabel = (state) => h('span', {class: `st st-${state}`}, t(`tstate.${state}`));

export function termStatusLabel(term) {
  if (term.status === 'enrolling') return h('span', {class: 'st st-pending'}, t('tstatus.enrolling'));
  if (term.status === 'revoked') return h('span', {class: 'st st-cancelled'}, t('tstatus.revoked'));
  return stateLabel(termState(term));
}

export const deliveryLabel = (state) => h('span', {class: `st st-${state}`, 'data-state': state}, t(`dstate.${state}`));

export function reasonText(reason, detail) {
  if (!reason && !detail) return '';
  const r = reason ? label('reason.', reason) : '';
  return [r, detail].filter(Boolean).join('：');
}

export const alertStatus = (a) => h('span', {class: `st st-${a.status}`}, t(`astatus.${a.status}`));

// Delivery states on the way to playing.
const moving = ['queued', 'offline', 'sent', 'accepted', 'fetching'];

export function total(counts) {
  return Object.values(counts || {}).reduce((a, b) => a + b, 0);
}

// progressBar draws a delivery tally as one bar.
export function progressBar(counts) {
  const n = total(counts) || 1;
  const seg = (cls, k) => (k > 0 ? h('span', {class: cls, style: `width:${(100 * k) / n}%`, title: String(k)}) : null);
  const c = (s) => counts[s] || 0;
  const movingN = moving.reduce((a, s) => a + c(s), 0);
  return h('div', {class: 'progress', role: 'img', 'aria-label': t('delivery.bar', {done: c('done'), total: total(counts)})},
    seg('p-done', c('done')), seg('p-playing', c('playing')), seg('p-moving', movingN),
    seg('p-failed', c('failed') + c('rejected')), seg('p-stopped', c('expired') + c('cancelled')));
}

// Areas is the area tree the user sees (GET /api/v1/overview's areas).
export class Areas {
  constructor(list) {
    this.list = list || [];
    this.byCode = new Map(this.list.map((a) => [a.code, a]));
    this.kids = new Map();
    for (const a of this.list) {
      const p = a.parent && this.byCode.has(a.parent) ? a.parent : '';
      if (!this.kids.has(p)) this.kids.set(p, []);
      this.kids.get(p).push(a);
    }
  }
  roots() { return this.kids.get('') || []; }
  children(code) { return this.kids.get(code) || []; }
  name(code) { const a = this.byCode.get(code); return a ? a.name : code; }
  // path names an area with its township, e.g. "长安镇 大巷村".
  path(code) {
    const out = [];
    for (let a = this.byCode.get(code); a; a = this.byCode.get(a.parent)) {
      if (a.level === 'township' || a.level === 'village') out.unshift(a.name);
    }
    return out.join(' ') || this.name(code);
  }
  villages() { return this.list.filter((a) => a.level === 'village' && a.inside); }
  inside(code) { const a = this.byCode.get(code); return !!(a && a.inside); }
}

// targetsText names an alert's targets.
export function targetsText(targets, areas, terminals) {
  const names = [];
  for (const a of (targets && targets.areas) || []) names.push(areas ? areas.path(a) || a : a);
  for (const id of (targets && targets.terminals) || []) {
    const term = terminals && terminals.get(id);
    names.push(term ? term.name : id);
  }
  return names.join('、');
}
