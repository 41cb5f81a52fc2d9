// Audit log viewer with the result of verifying its seal chain, and the
// server's CSV export.
import {h, mount} from '../dom.js';
import {t, time} from '../i18n.js';
import {api, getList, message} from '../api.js';

export async function render(main, app) {
  const verdict = h('div', {id: 'audit-verify', role: 'status'});
  const actor = h('input', {type: 'text', id: 'audit-actor', 'aria-label': t('audit.actor'), placeholder: t('audit.actor')});
  const action = h('input', {type: 'text', id: 'audit-action', 'aria-label': t('audit.action'), placeholder: t('audit.action_placeholder')});
  const table = h('div', {class: 'scroll', id: 'audit-table'});
  const csvLink = h('a', {class: 'button', id: 'audit-csv', href: '/api/v1/audit.csv', download: 'dalaba-audit.csv'}, t('audit.csv'));

  const verify = async () => {
    mount(verdict, h('p', {class: 'muted'}, t('audit.verifying')));
    try {
      const v = await api('GET', '/api/v1/audit/verify');
      mount(verdict, v.ok
        ? h('div', {class: 'note', style: 'border-color:var(--ok);background:#ecfdf3'}, h('strong', {}, t('audit.ok', {n: v.entries})))
        : h('div', {class: 'errors'}, h('strong', {}, t('audit.bad', {seq: v.first_bad_seq})), h('p', {}, v.problem)));
    } catch (e) {
      mount(verdict, h('div', {class: 'errors'}, message(e)));
    }
  };
  const query = () => {
    const p = new URLSearchParams({limit: '500'});
    if (actor.value.trim()) p.set('actor', actor.value.trim());
    if (action.value.trim()) p.set('action', action.value.trim());
    return p.toString();
  };
  const load = async () => {
    const q = query();
    csvLink.href = '/api/v1/audit.csv?' + q.replace(/(^|&)limit=\d+/, '');
    const es = await getList('/api/v1/audit?' + q);
    mount(table, es.length === 0 ? h('p', {class: 'empty'}, t('audit.none')) : h('table', {},
      h('thead', {}, h('tr', {}, h('th', {class: 'num'}, '#'), h('th', {}, t('audit.time')), h('th', {}, t('audit.actor')),
        h('th', {}, t('audit.action')), h('th', {class: 'wide'}, t('audit.target')), h('th', {class: 'wide'}, t('audit.change')),
        h('th', {class: 'wide'}, t('audit.source')))),
      h('tbody', {}, es.map((e) => h('tr', {},
        h('td', {class: 'num'}, e.seq), h('td', {class: 'nowrap'}, time(e.at)), h('td', {}, e.actor),
        h('td', {class: 'action'}, h('span', {class: 'mono', style: 'word-break:normal'}, e.action)), h('td', {class: 'wide mono'}, e.target),
        h('td', {class: 'wide change'}, [e.before && e.after ? `${e.before} → ${e.after}` : e.after || e.before || '', e.detail ? ' ' + e.detail : ''].join('')),
        h('td', {class: 'wide mono'}, e.source))))));
  };
  const form = h('form', {class: 'inline', onsubmit: (ev) => { ev.preventDefault(); load().catch((e) => mount(table, h('div', {class: 'errors'}, message(e)))); }},
    actor, action, h('button', {type: 'submit'}, t('audit.filter')), h('button', {type: 'button', onclick: verify}, t('audit.verify')), csvLink);
  mount(main, h('h1', {}, t('audit.title')), verdict, h('section', {class: 'panel'}, form, h('div', {style: 'margin-top:.8rem'}, table)));
  await Promise.all([verify(), load()]);
}
