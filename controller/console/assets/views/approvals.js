// Approvals: alerts waiting for a second person, and alerts sent at once
// (issue now) that still need a review, marked loudly.
import {h, mount, coalesce} from '../dom.js';
import {t, time} from '../i18n.js';
import {api, getList, message} from '../api.js';
import {levelBadge, drillBadge, targetsText} from '../model.js';

export async function render(main, app) {
  const list = h('div', {id: 'approval-list'});
  mount(main, h('h1', {}, t('approvals.title')), h('p', {class: 'muted'}, t('approvals.intro')), list);
  const data = await app.load();
  const load = async () => {
    const items = await getList('/api/v1/approvals');
    mount(list, items.length === 0 ? h('p', {class: 'empty panel'}, t('approvals.none')) : items.map((a) => item(a)));
  };

  const item = (a) => {
    const mine = a.created_by === app.me.user.name;
    const comment = h('textarea', {id: 'comment-' + a.id, rows: 2, placeholder: t('approvals.comment_placeholder')});
    const err = h('div', {class: 'err hidden', role: 'alert'});
    const act = async (what) => {
      err.classList.add('hidden');
      if (!comment.value.trim()) {
        err.textContent = t('field.comment') + '：' + t('check.comment');
        err.classList.remove('hidden');
        comment.focus();
        return;
      }
      try {
        await api('POST', `/api/v1/alerts/${a.id}/${what}`, {comment: comment.value.trim()});
        app.toast(t('approvals.done_' + what));
        app.refreshBadges();
        await load();
      } catch (e) {
        err.textContent = message(e);
        err.classList.remove('hidden');
      }
    };
    const buttons = a.needs_review
      ? [h('button', {type: 'button', class: 'primary', id: 'review-' + a.id, disabled: mine, onclick: () => act('review')}, t('approvals.review'))]
      : [h('button', {type: 'button', class: 'ok', id: 'approve-' + a.id, disabled: mine, onclick: () => act('approve')}, t('approvals.approve')),
        h('button', {type: 'button', class: 'danger', id: 'reject-' + a.id, disabled: mine, onclick: () => act('reject')}, t('approvals.reject'))];
    return h('article', {class: 'panel', 'data-alert': a.id},
      a.needs_review ? h('div', {class: 'banner-review', role: 'alert'}, t('approvals.issued_now')) : null,
      h('h2', {class: 'inline'}, levelBadge(a.level), drillBadge(a), h('a', {href: '#/alerts/' + a.id}, a.title)),
      h('dl', {class: 'kv'},
        h('dt', {}, t('field.class')), h('dd', {}, t('class.' + a.class), ' · ', t('msgtype.' + a.msg_type)),
        h('dt', {}, t('field.targets')), h('dd', {}, targetsText(a.targets, data.areas, data.terminals)),
        h('dt', {}, t('approvals.author')), h('dd', {}, a.created_by, ' · ', time(a.created_at)),
        h('dt', {}, t('approvals.window')), h('dd', {}, time(a.not_before), ' — ', time(a.expires)),
        h('dt', {}, t('approvals.who')), h('dd', {}, (a.approvers || []).join('、') || '—')),
      mine ? h('p', {class: 'note'}, t('approvals.own')) : h('div', {class: 'field', style: 'margin-top:.8rem'},
        h('label', {for: 'comment-' + a.id}, t('field.comment')), comment, err),
      h('div', {class: 'actions'}, buttons));
  };

  await load();
  const again = coalesce(() => { if (app.current()) load().catch(() => {}); }, 400);
  app.on('alert', again);
  app.on('resync', again);
}
