// History: the latest alerts with their outcomes, searchable here, and
// exported as CSV by the browser.
import {h, mount, download, csv} from '../dom.js';
import {t, time} from '../i18n.js';
import {getList} from '../api.js';
import {levelBadge, drillBadge, alertStatus, progressBar, targetsText, total} from '../model.js';

export async function render(main, app) {
  const [data, alerts] = await Promise.all([app.load(), getList('/api/v1/alerts')]);
  const q = h('input', {type: 'search', id: 'history-search', placeholder: t('history.search'), 'aria-label': t('history.search')});
  const status = h('select', {id: 'history-status', 'aria-label': t('history.status')},
    h('option', {value: ''}, t('history.all')),
    ['pending', 'active', 'rejected', 'cancelled', 'expired'].map((s) => h('option', {value: s}, t('astatus.' + s))));
  const table = h('div', {class: 'scroll', id: 'history-table'});
  const count = h('p', {class: 'muted', id: 'history-count'});
  const text = (a) => [a.id, a.title, a.created_by, a.event_type, t('astatus.' + a.status), t('class.' + a.class), t('level.' + a.level),
    targetsText(a.targets, data.areas, data.terminals), a.drill ? t('drill.badge') : ''].join(' ').toLowerCase();

  const shown = () => {
    const words = q.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    return alerts.filter((a) => (!status.value || a.status === status.value) && words.every((w) => text(a).includes(w)));
  };
  const draw = () => {
    const list = shown();
    count.textContent = t('history.count', {n: list.length, all: alerts.length});
    mount(table, list.length === 0 ? h('p', {class: 'empty'}, t('history.none')) : h('table', {},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, t('history.time')), h('th', {scope: 'col'}, t('field.title')), h('th', {scope: 'col'}, t('field.level')),
        h('th', {scope: 'col', class: 'wide'}, t('field.targets')), h('th', {scope: 'col'}, t('history.status')),
        h('th', {scope: 'col', class: 'wide', style: 'min-width:10rem'}, t('delivery.progress')), h('th', {scope: 'col', class: 'wide'}, t('approvals.author')))),
      h('tbody', {}, list.map((a) => h('tr', {'data-alert': a.id},
        h('td', {class: 'nowrap'}, time(a.created_at)),
        h('td', {}, h('a', {href: '#/alerts/' + a.id}, a.title), ' ', drillBadge(a)),
        h('td', {}, levelBadge(a.level)),
        h('td', {class: 'wide'}, targetsText(a.targets, data.areas, data.terminals)),
        h('td', {}, alertStatus(a)),
        h('td', {class: 'wide'}, total(a.counts) ? [progressBar(a.counts), h('small', {}, `${a.counts.done || 0} / ${total(a.counts)}`)] : '—'),
        h('td', {class: 'wide'}, a.created_by))))));
  };
  const exportCSV = () => {
    const states = ['done', 'playing', 'failed', 'rejected', 'expired', 'cancelled', 'offline'];
    const rows = [[t('history.time'), 'EBM ID', t('field.title'), t('field.class'), t('field.level'), t('field.drill'), t('field.event'),
      t('field.targets'), t('history.status'), t('approvals.author'), t('delivery.decided'), t('history.terminals'),
      ...states.map((s) => t('dstate.' + s))]];
    for (const a of shown()) {
      rows.push([time(a.created_at), a.id, a.title, t('class.' + a.class), t('level.' + a.level), a.drill ? t('msgtype.' + a.msg_type) : '',
        a.event_type, targetsText(a.targets, data.areas, data.terminals), t('astatus.' + a.status), a.created_by, a.approved_by || '',
        total(a.counts), ...states.map((s) => (a.counts || {})[s] || 0)]);
    }
    download('dalaba-alerts.csv', csv(rows), 'text/csv;charset=utf-8');
  };
  q.addEventListener('input', draw);
  status.addEventListener('change', draw);
  mount(main, h('h1', {}, t('history.title')),
    h('section', {class: 'panel'},
      h('div', {class: 'inline', style: 'margin-bottom:.6rem'}, h('div', {style: 'flex:1;min-width:12rem'}, q), status,
        h('button', {type: 'button', id: 'history-csv', onclick: exportCSV}, t('history.csv'))),
      count, table));
  draw();
}
