// Account: who I am, password change, sign out everywhere.
import {h, mount} from '../dom.js';
import {t, time} from '../i18n.js';
import {api, message} from '../api.js';

export async function render(main, app) {
  const [me, data] = await Promise.all([api('GET', '/api/v1/me'), app.load()]);
  const cur = h('input', {type: 'password', id: 'cur-password', autocomplete: 'current-password'});
  const npw = h('input', {type: 'password', id: 'acc-new-password', autocomplete: 'new-password'});
  const npw2 = h('input', {type: 'password', id: 'acc-new-password2', autocomplete: 'new-password'});
  const msg = h('div', {role: 'status', id: 'password-msg'});
  const form = h('form', {class: 'panel', novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    if (npw.value !== npw2.value) return mount(msg, h('div', {class: 'errors'}, t('account.mismatch')));
    try {
      await api('POST', '/api/v1/me/password', {password: cur.value, new_password: npw.value});
      mount(msg, h('p', {class: 'note'}, t('account.changed')));
      cur.value = npw.value = npw2.value = '';
    } catch (e) {
      mount(msg, h('div', {class: 'errors'}, (e.field ? t('field.' + e.field) + '：' : '') + message(e)));
    }
  }},
  h('h2', {}, t('account.change')),
  h('div', {class: 'field'}, h('label', {for: 'cur-password'}, t('account.current')), cur),
  h('div', {class: 'field'}, h('label', {for: 'acc-new-password'}, t('account.new_password')), npw, h('div', {class: 'hint'}, t('account.rules'))),
  h('div', {class: 'field'}, h('label', {for: 'acc-new-password2'}, t('account.new_password2')), npw2),
  msg, h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, t('account.change'))));
  const everywhere = h('button', {type: 'button', class: 'danger', onclick: async () => {
    if (!window.confirm(t('account.everywhere_confirm'))) return;
    try {
      await api('POST', '/api/v1/signout/everywhere');
    } catch (e) { /* this session ended with the others */ }
    location.reload();
  }}, t('account.everywhere'));
  mount(main, h('h1', {}, t('account.title')),
    h('section', {class: 'panel'}, h('dl', {class: 'kv'},
      h('dt', {}, t('signin.name')), h('dd', {}, me.name),
      h('dt', {}, t('account.display')), h('dd', {}, me.display),
      h('dt', {}, t('account.roles')), h('dd', {}, me.roles.map((r) => t('role.' + r)).join('、')),
      h('dt', {}, t('account.areas')), h('dd', {}, me.areas.map((c) => data.areas.name(c)).join('、')),
      h('dt', {}, t('account.password_at')), h('dd', {}, time(me.password_changed_at)))),
    form,
    h('section', {class: 'panel'}, h('h2', {}, t('account.sessions')), h('p', {}, t('account.everywhere_hint')), everywhere));
}
