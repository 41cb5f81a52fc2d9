// Overview: terminals by state, online rate and the coverage figure for the
// county and each township, recent alerts and active faults, kept live.
import {h, mount, coalesce} from '../dom.js';
import {t, shortTime, percent, ago, label} from '../i18n.js';
import {getList} from '../api.js';
import {levelBadge, drillBadge, alertStatus, progressBar, total} from '../model.js';

export async function render(main, app) {
  const cards = h('div', {class: 'cards', id: 'cards'});
  const towns = h('div', {class: 'scroll', id: 'townships'});
  const alerts = h('div', {id: 'recent-alerts'});
  const faults = h('div', {id: 'active-faults'});
  const stamp = h('p', {class: 'muted', id: 'overview-at'});
  mount(main,
    h('h1', {}, t('overview.title')), stamp, cards,
    h('section', {class: 'panel', 'aria-labelledby': 'h-towns'}, h('h2', {id: 'h-towns'}, t('overview.townships')), towns),
    h('div', {class: 'grid cols-2'},
      h('section', {class: 'panel', 'aria-labelledby': 'h-alerts'}, h('h2', {id: 'h-alerts'}, t('overview.recent')), alerts),
      h('section', {class: 'panel', 'aria-labelledby': 'h-faults'}, h('h2', {id: 'h-faults'}, t('overview.faults')), faults)));

  const states = new Map(); // terminal id → state last drawn; heartbeats that change nothing redraw nothing
  const load = async () => {
    const [data, list, fs] = await Promise.all([app.load(), getList('/api/v1/alerts'), getList('/api/v1/faults')]);
    const {ov, terminals, areas} = data;
    const scope = app.me.user.areas.map((c) => areas.name(c)).join('、');
    for (const [id, term] of terminals) states.set(id, term.state);
    const s = ov.total;
    const target = ov.coverage_target;
    mount(stamp, t('overview.scope', {name: scope || s.name}), ' · ', t('overview.updated', {at: shortTime(ov.at)}));
    const card = (cls, n, label, id, sub) => h('div', {class: 'card ' + cls, id}, h('div', {class: 'n'}, n), h('div', {class: 'l'}, label), sub ? h('div', {class: 'l'}, sub) : null);
    mount(cards,
      card('', s.terminals, t('overview.terminals'), 'c-terminals'),
      card('ok', s.online, t('overview.online'), 'c-online'),
      card('off', s.offline, t('overview.offline'), 'c-offline'),
      card('play', s.playing, t('overview.playing'), 'c-playing'),
      card(s.faulty ? 'bad' : 'ok', s.faulty, t('overview.faulty'), 'c-faulty'),
      card(s.online_rate >= 0.95 ? 'ok' : 'warn', percent(s.online_rate), t('overview.online_rate'), 'c-rate'),
      card(s.coverage >= target ? 'ok' : 'bad', percent(s.coverage), t('overview.coverage'), 'c-coverage',
        t('overview.coverage_sub', {covered: s.villages_covered, villages: s.villages, target: percent(target)})));
    mount(towns, ov.townships.length === 0 ? h('p', {class: 'empty'}, t('overview.no_townships')) : h('table', {},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, t('overview.township')), h('th', {class: 'num', scope: 'col'}, t('overview.terminals')),
        h('th', {class: 'num', scope: 'col'}, t('overview.online')), h('th', {class: 'num wide', scope: 'col'}, t('overview.faulty')),
        h('th', {class: 'num', scope: 'col'}, t('overview.online_rate')), h('th', {class: 'num wide', scope: 'col'}, t('overview.villages_covered')),
        h('th', {class: 'num', scope: 'col'}, t('overview.coverage')))),
      h('tbody', {}, ov.townships.map((tw) => h('tr', {'data-code': tw.code},
        h('th', {scope: 'row'}, h('a', {href: '#/areas/' + tw.code}, tw.name)),
        h('td', {class: 'num'}, tw.terminals), h('td', {class: 'num'}, tw.online), h('td', {class: 'num wide'}, tw.faulty),
        h('td', {class: 'num'}, percent(tw.online_rate)), h('td', {class: 'num wide'}, `${tw.villages_covered} / ${tw.villages}`),
        h('td', {class: 'num'}, h('span', {class: tw.coverage >= target ? 'st st-done' : 'st st-failed'}, percent(tw.coverage))))))));
    const recent = list.slice(0, 8);
    mount(alerts, recent.length === 0 ? h('p', {class: 'empty'}, t('overview.no_alerts')) : h('ul', {class: 'plain'},
      recent.map((a) => h('li', {style: 'margin-bottom:.6rem'},
        h('div', {class: 'inline'}, levelBadge(a.level), drillBadge(a), h('a', {href: '#/alerts/' + a.id}, a.title), alertStatus(a),
          h('span', {class: 'muted'}, shortTime(a.created_at))),
        total(a.counts) > 0 ? progressBar(a.counts) : null))));
    mount(faults, fs.length === 0 ? h('p', {class: 'empty'}, t('overview.no_faults')) : h('ul', {},
      fs.map((f) => {
        const term = terminals.get(f.terminal_id);
        return h('li', {}, h('a', {href: '#/terminals/' + f.terminal_id}, term ? term.name : f.terminal_id), '：',
          label('fault.', f.code), ' — ', f.message, ' ', h('span', {class: 'muted'}, ago(f.since)));
      })));
  };
  await load();
  const again = coalesce(() => { if (app.current()) load().catch(() => {}); }, 500);
  for (const kind of ['fault', 'alert', 'delivery', 'resync']) app.on(kind, again);
  app.on('terminal', (e) => { if (states.get(e.data.id) !== e.data.state) again(); });
}
