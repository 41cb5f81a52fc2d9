// Sign-in, and the forced change of a one-time password at first sign-in.
import {h, mount} from '../dom.js';
import {t} from '../i18n.js';
import {api, message} from '../api.js';

export function render(main, opts) {
  let mustChange = false;
  const err = h('div', {class: 'errors hidden', role: 'alert', id: 'signin-error'});
  const note = h('div', {class: 'note' + (opts.note ? '' : ' hidden'), role: 'status'}, opts.note || '');
  const name = h('input', {type: 'text', id: 'name', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'off', spellcheck: 'false'});
  const pw = h('input', {type: 'password', id: 'password', autocomplete: 'current-password', required: true});
  const npw = h('input', {type: 'password', id: 'new-password', autocomplete: 'new-password'});
  const npw2 = h('input', {type: 'password', id: 'new-password2', autocomplete: 'new-password'});
  const change = h('fieldset', {class: 'hidden', id: 'change-box'},
    h('legend', {}, t('signin.change_title')),
    h('p', {}, t('signin.change_why')),
    h('div', {class: 'field'}, h('label', {for: 'new-password'}, t('account.new_password')), npw,
      h('div', {class: 'hint'}, t('account.rules'))),
    h('div', {class: 'field'}, h('label', {for: 'new-password2'}, t('account.new_password2')), npw2));
  const submit = h('button', {type: 'submit', class: 'primary', id: 'signin-submit'}, t('signin.submit'));

  const fail = (text) => {
    err.textContent = text;
    err.classList.remove('hidden');
  };

  const form = h('form', {class: 'panel', novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    err.classList.add('hidden');
    if (!name.value.trim() || !pw.value) return fail(t('signin.missing'));
    const body = {name: name.value.trim(), password: pw.value};
    if (mustChange) {
      if (npw.value !== npw2.value) return fail(t('account.mismatch'));
      if (!npw.value) return fail(t('signin.change_why'));
      body.new_password = npw.value;
    }
    submit.disabled = true;
    try {
      const out = await api('POST', '/api/v1/signin', body);
      await opts.done(out.csrf_token);
    } catch (e) {
      if (e.status === 403 && e.field === 'new_password' && !mustChange) {
        mustChange = true;
        change.classList.remove('hidden');
        submit.textContent = t('signin.change_submit');
        npw.focus();
      } else {
        fail(e.field === 'new_password' ? t('field.new_password') + '：' + message(e) : message(e));
      }
    } finally {
      submit.disabled = false;
    }
  }},
  err,
  h('div', {class: 'field'}, h('label', {for: 'name'}, t('signin.name')), name),
  h('div', {class: 'field'}, h('label', {for: 'password'}, t('signin.password')), pw),
  change,
  h('div', {class: 'actions'}, submit,
    h('button', {type: 'button', onclick: opts.switchLanguage, id: 'lang'}, t('lang.other'))));

  mount(main, h('div', {class: 'signin'},
    h('div', {class: 'brandmark', 'aria-hidden': 'true'}, '大喇叭'),
    h('h1', {}, t('signin.title')), note, form,
    h('p', {class: 'muted'}, t('signin.footer'))));
  name.focus();
}
