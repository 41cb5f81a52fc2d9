// One alert's delivery: a progress bar and each terminal's state, live
// (queued → sent → accepted → fetching → playing → done, or the reason it
// failed), with the cancel button.
import {h, mount, coalesce} from '../dom.js';
import {t, time, shortTime} from '../i18n.js';
import {api, message} from '../api.js';
import {levelBadge, drillBadge, alertStatus, deliveryLabel, progressBar, reasonText, targetsText, total} from '../model.js';

const order = ['queued', 'offline', 'sent', 'accepted', 'fetching', 'playing', 'done', 'failed', 'rejected', 'expired', 'cancelled'];
// A delivery only moves forward; offline → queued is a terminal coming back.
const ranks = {queued: 0, offline: 0, sent: 1, accepted: 2, fetching: 3, playing: 4};
const rank = (s) => (s in ranks ? ranks[s] : 5);

export async function render(main, app, params) {
  const id = params[0];
  const data = await app.load();
  const rows = new Map(); // terminal id → delivery
  let alert = null;
  const head = h('div', {id: 'alert-head'});
  const bar = h('div', {id: 'progress'});
  const table = h('div', {class: 'scroll', id: 'deliveries'});
  mount(main, head, h('section', {class: 'panel', 'aria-labelledby': 'h-progress'}, h('h2', {id: 'h-progress'}, t('delivery.progress')), bar),
    h('section', {class: 'panel', 'aria-labelledby': 'h-rows'}, h('h2', {id: 'h-rows'}, t('delivery.terminals')), table));

  const keep = (d) => {
    const old = rows.get(d.terminal_id);
    if (!old || rank(d.state) >= rank(old.state)) rows.set(d.terminal_id, d);
  };

  const drawHead = () => {
    const a = alert;
    const mayCancel = a.status === 'active' && app.can('alert.cancel') && (a.class !== 'emergency' || app.can('alert.emergency'));
    mount(head,
      a.drill ? h('div', {class: 'banner-drill'}, t('delivery.drill', {kind: t('msgtype.' + a.msg_type)})) : null,
      a.needs_review ? h('div', {class: 'banner-review', role: 'alert'}, t('approvals.issued_now')) : null,
      h('h1', {class: 'inline'}, levelBadge(a.level), drillBadge(a), a.title, h('span', {id: 'alert-status', 'data-status': a.status}, alertStatus(a))),
      a.status === 'pending' ? h('p', {class: 'note'}, t('delivery.pending')) : null,
      h('section', {class: 'panel'}, h('dl', {class: 'kv'},
        h('dt', {}, t('delivery.ebm')), h('dd', {class: 'mono'}, a.id),
        h('dt', {}, t('field.class')), h('dd', {}, t('class.' + a.class), ' · ', t('msgtype.' + a.msg_type), ' · ', t('field.event'), ' ', a.event_type),
        h('dt', {}, t('field.targets')), h('dd', {}, targetsText(a.targets, data.areas, data.terminals)),
        h('dt', {}, t('approvals.author')), h('dd', {}, a.created_by, ' · ', time(a.created_at)),
        a.approved_by ? [h('dt', {}, t('delivery.decided')), h('dd', {}, a.approved_by, ' · ', time(a.approved_at), a.decision_comment ? ' · “' + a.decision_comment + '”' : '')] : null,
        a.reviewed_by ? [h('dt', {}, t('delivery.reviewed')), h('dd', {}, a.reviewed_by)] : null,
        h('dt', {}, t('approvals.window')), h('dd', {}, time(a.not_before), ' — ', time(a.expires)),
        a.cancelled_at && !a.cancelled_at.startsWith('0001') ? [h('dt', {}, t('astatus.cancelled')), h('dd', {}, time(a.cancelled_at))] : null),
      mayCancel ? cancelBox() : null));
  };

  const cancelBox = () => {
    const reason = h('input', {type: 'text', id: 'cancel-reason', placeholder: t('delivery.cancel_reason')});
    const err = h('div', {class: 'err hidden', role: 'alert'});
    const btn = h('button', {type: 'button', class: 'danger', id: 'cancel-alert', onclick: async () => {
      if (!window.confirm(t('delivery.cancel_confirm', {title: alert.title}))) return;
      btn.disabled = true;
      try {
        await api('POST', `/api/v1/alerts/${id}/cancel`, {reason: reason.value.trim()});
        app.toast(t('delivery.cancelled'));
        await load();
      } catch (e) {
        err.textContent = message(e);
        err.classList.remove('hidden');
        btn.disabled = false;
      }
    }}, t('delivery.cancel'));
    return h('div', {class: 'actions'}, h('label', {for: 'cancel-reason', class: 'hidden'}, t('delivery.cancel_reason')), reason, btn, err);
  };

  const drawRows = () => {
    const counts = {};
    for (const d of rows.values()) counts[d.state] = (counts[d.state] || 0) + 1;
    const n = total(counts);
    const done = counts.done || 0;
    const failed = (counts.failed || 0) + (counts.rejected || 0) + (counts.expired || 0);
    mount(bar, n === 0 ? h('p', {class: 'empty'}, alert.status === 'pending' ? t('delivery.none_pending') : t('delivery.none')) : [
      progressBar(counts),
      h('p', {id: 'progress-text', 'data-done': done, 'data-total': n}, t('delivery.summary', {done, n, failed})),
      h('div', {class: 'legend'}, order.filter((s) => counts[s]).map((s) => h('span', {}, deliveryLabel(s), ' ', counts[s]))),
      h('p', {class: 'hint muted'}, t('delivery.path'))]);
    const list = [...rows.values()].sort((a, b) => name(a).localeCompare(name(b), 'zh-CN'));
    mount(table, list.length === 0 ? null : h('table', {},
      h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, t('delivery.terminal')), h('th', {scope: 'col', class: 'wide'}, t('delivery.area')),
        h('th', {scope: 'col'}, t('delivery.state')), h('th', {scope: 'col'}, t('delivery.reason')), h('th', {scope: 'col', class: 'wide'}, t('delivery.updated')))),
      h('tbody', {}, list.map((d) => h('tr', {id: 'd-' + d.terminal_id, 'data-state': d.state},
        h('td', {}, h('a', {href: '#/terminals/' + d.terminal_id}, name(d))),
        h('td', {class: 'wide'}, term(d) ? data.areas.path(term(d).area_code) : ''),
        h('td', {}, deliveryLabel(d.state)),
        h('td', {}, reasonText(d.reason, d.detail)),
        h('td', {class: 'wide nowrap'}, shortTime(d.updated_at)))))));
  };
  const term = (d) => data.terminals.get(d.terminal_id);
  const name = (d) => (term(d) ? term(d).name : d.terminal_id);

  const load = async () => {
    alert = await api('GET', '/api/v1/alerts/' + encodeURIComponent(id));
    for (const d of alert.deliveries || []) keep(d);
    drawHead();
    drawRows();
  };
  await load();
  // A rejection sends no event: look again now and then while it waits.
  const poll = () => setTimeout(async () => {
    if (!app.current() || !alert || alert.status !== 'pending') return;
    await load().catch(() => {});
    poll();
  }, 10000);
  poll();
  const redraw = coalesce(drawRows, 150);
  app.on('delivery', (e) => {
    if (e.alert_id !== id) return;
    keep(e.data);
    redraw();
  });
  const again = coalesce(() => { if (app.current()) load().catch(() => {}); }, 300);
  app.on('alert', (e) => { if (e.alert_id === id) again(); });
  app.on('resync', again);
}
