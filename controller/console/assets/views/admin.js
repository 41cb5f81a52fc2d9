// Administration, each section shown to those whose roles allow it: users
// (add with roles and areas, disable or enable, reset a password, showing
// the one-time password once), the approval policy, and the issuing keys
// (rotate; retire, with the server's refusal shown when it refuses).
import {h, mount} from '../dom.js';
import {t, time, label} from '../i18n.js';
import {api, getList, message} from '../api.js';

const roles = ['admin', 'officer', 'approver', 'cadre', 'technician', 'viewer'];

export async function render(main, app) {
  const data = await app.load();
  const sections = [];
  if (app.can('users.manage')) sections.push(await users(app, data));
  if (app.can('settings.manage')) sections.push(await policy(app));
  if (app.can('keys.manage')) sections.push(await keys(app));
  mount(main, h('h1', {}, t('admin.title')), sections);
}

const errorBox = (e) => h('div', {class: 'errors', role: 'alert'}, (e.field ? label('afield.', e.field) + '：' : '') + message(e));

// oneTime shows a one-time password once, with what to do with it.
const oneTime = (name, pw) => h('div', {class: 'note', id: 'one-time'},
  h('p', {}, t('admin.one_time', {name})), h('div', {class: 'secret', id: 'one-time-password'}, pw), h('p', {}, t('admin.one_time_once')));

async function users(app, data) {
  const box = h('section', {class: 'panel', id: 'users', 'aria-labelledby': 'h-users'});
  const msg = h('div', {role: 'status', id: 'users-msg'});
  const list = h('div', {class: 'scroll', id: 'user-list'});
  const draw = async () => {
    const us = await getList('/api/v1/users');
    mount(list, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, t('signin.name')), h('th', {scope: 'col'}, t('account.display')),
        h('th', {scope: 'col'}, t('account.roles')), h('th', {scope: 'col', class: 'wide'}, t('account.areas')),
        h('th', {scope: 'col'}, t('admin.status')), h('th', {scope: 'col'}, t('admin.actions')))),
      h('tbody', {}, us.map((u) => h('tr', {'data-user': u.name},
        h('td', {class: 'mono'}, u.name), h('td', {}, u.display || '—'),
        h('td', {}, u.roles.map((r) => t('role.' + r)).join('、')),
        h('td', {class: 'wide'}, u.areas.map((c) => data.areas.path(c)).join('、')),
        h('td', {}, u.disabled ? h('span', {class: 'st st-cancelled'}, t('admin.disabled')) : h('span', {class: 'st st-active'}, t('admin.enabled')),
          u.must_change_password ? h('div', {class: 'muted'}, t('admin.must_change')) : null),
        h('td', {class: 'nowrap'},
          u.name === app.me.user.name ? h('span', {class: 'muted'}, t('admin.you')) : [
            h('button', {type: 'button', id: 'toggle-' + u.name, onclick: () => act(`PATCH`, u.name, {disabled: !u.disabled},
              u.disabled ? t('admin.enabled_msg', {name: u.name}) : t('admin.disabled_msg', {name: u.name}))},
            u.disabled ? t('admin.enable') : t('admin.disable')), ' ',
            h('button', {type: 'button', id: 'reset-' + u.name, onclick: () => reset(u.name)}, t('admin.reset'))]))))));
  };
  const act = async (method, name, body, done) => {
    try {
      await api(method, '/api/v1/users/' + encodeURIComponent(name), body);
      mount(msg, h('p', {class: 'note'}, done));
      await draw();
    } catch (e) {
      mount(msg, errorBox(e));
    }
  };
  const reset = async (name) => {
    if (!window.confirm(t('admin.reset_confirm', {name}))) return;
    try {
      const res = await api('POST', `/api/v1/users/${encodeURIComponent(name)}/reset-password`);
      mount(msg, oneTime(name, res.one_time_password));
      await draw();
    } catch (e) {
      mount(msg, errorBox(e));
    }
  };

  // Add a user.
  const nameIn = h('input', {type: 'text', id: 'user-name', autocomplete: 'off', spellcheck: 'false', maxlength: 64});
  const displayIn = h('input', {type: 'text', id: 'user-display', maxlength: 100});
  const roleBoxes = roles.map((r) => h('label', {}, h('input', {type: 'checkbox', name: 'role', value: r, id: 'role-' + r}), t('role.' + r)));
  const areaSel = h('select', {id: 'user-areas', multiple: true, size: 6},
    data.areas.list.filter((a) => a.inside).map((a) => h('option', {value: a.code}, data.areas.path(a.code) + ' ' + a.code)));
  const form = h('form', {novalidate: true, id: 'user-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const req = {name: nameIn.value.trim(), display: displayIn.value.trim(),
      roles: roleBoxes.map((l) => l.firstChild).filter((x) => x.checked).map((x) => x.value),
      areas: [...areaSel.selectedOptions].map((o) => o.value)};
    const problems = [];
    if (!/^[^\s/\\:]{2,64}$/.test(req.name)) problems.push(t('admin.check_name'));
    if (req.roles.length === 0) problems.push(t('admin.check_roles'));
    if (req.areas.length === 0) problems.push(t('admin.check_areas'));
    if (problems.length) {
      mount(msg, h('div', {class: 'errors', role: 'alert'}, h('ul', {}, problems.map((p) => h('li', {}, p)))));
      return;
    }
    try {
      const res = await api('POST', '/api/v1/users', req);
      mount(msg, oneTime(res.user.name, res.one_time_password));
      form.reset();
      await draw();
    } catch (e) {
      mount(msg, errorBox(e));
    }
  }},
  h('h3', {}, t('admin.add_user')),
  h('div', {class: 'grid cols-2'},
    h('div', {},
      h('div', {class: 'field'}, h('label', {for: 'user-name'}, t('signin.name')), nameIn, h('div', {class: 'hint'}, t('admin.name_hint'))),
      h('div', {class: 'field'}, h('label', {for: 'user-display'}, t('account.display')), displayIn),
      h('fieldset', {}, h('legend', {}, t('account.roles')), h('div', {class: 'inline'}, roleBoxes))),
    h('div', {class: 'field'}, h('label', {for: 'user-areas'}, t('account.areas')), areaSel, h('div', {class: 'hint'}, t('admin.areas_hint')))),
  h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary', id: 'user-submit'}, t('admin.add_user'))));
  await draw();
  return mount(box, h('h2', {id: 'h-users'}, t('admin.users')), msg, list, form);
}

async function policy(app) {
  const pol = await api('GET', '/api/v1/settings/policy');
  const box = h('section', {class: 'panel', id: 'policy', 'aria-labelledby': 'h-policy'});
  const msg = h('div', {role: 'status', id: 'policy-msg'});
  const approval = pol.approval || {};
  const levelBoxes = (cls, list) => list.map((l) => h('label', {}, h('input', {type: 'checkbox', name: 'approve-' + cls, value: l, id: `approve-${cls}-${l}`,
    checked: (approval[cls] || []).includes(l)}), t('level.' + l)));
  const emergency = levelBoxes('emergency', [1, 2, 3, 4]);
  const daily = levelBoxes('daily', [0, 1, 2, 3, 4]);
  const drillRoles = roles.map((r) => h('label', {}, h('input', {type: 'checkbox', name: 'drill-role', value: r, checked: (pol.drill_roles || []).includes(r)}), t('role.' + r)));
  const issueNow = h('input', {type: 'checkbox', id: 'policy-issue-now', checked: !!pol.issue_now_level1});
  const drillPrio = h('input', {type: 'number', id: 'policy-drill-priority', min: 0, max: 100, value: pol.drill_priority || 0});
  const picked = (boxes) => boxes.map((l) => l.firstChild).filter((x) => x.checked).map((x) => (Number.isNaN(Number(x.value)) ? x.value : Number(x.value)));
  const form = h('form', {novalidate: true, id: 'policy-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const req = {approval: {emergency: picked(emergency), daily: picked(daily)}, drill_roles: picked(drillRoles),
      issue_now_level1: issueNow.checked, drill_priority: Number(drillPrio.value)};
    try {
      await api('PUT', '/api/v1/settings/policy', req);
      app.me.policy = req;
      mount(msg, h('p', {class: 'note'}, t('admin.policy_saved')));
    } catch (e) {
      mount(msg, errorBox(e));
    }
  }},
  h('fieldset', {}, h('legend', {}, t('admin.approve_emergency')), h('div', {class: 'inline'}, emergency)),
  h('fieldset', {}, h('legend', {}, t('admin.approve_daily')), h('div', {class: 'inline'}, daily)),
  h('fieldset', {}, h('legend', {}, t('admin.drill_roles')), h('div', {class: 'inline'}, drillRoles)),
  h('div', {class: 'field'}, h('label', {}, issueNow, ' ', t('admin.issue_now')), h('div', {class: 'hint'}, t('admin.issue_now_hint'))),
  h('div', {class: 'field'}, h('label', {for: 'policy-drill-priority'}, t('admin.drill_priority')), drillPrio, h('div', {class: 'hint'}, t('admin.drill_priority_hint'))),
  h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary', id: 'policy-submit'}, t('admin.policy_save'))));
  return mount(box, h('h2', {id: 'h-policy'}, t('admin.policy')), h('p', {class: 'muted'}, t('admin.policy_hint')), msg, form);
}

async function keys(app) {
  const box = h('section', {class: 'panel', id: 'keys', 'aria-labelledby': 'h-keys'});
  const msg = h('div', {role: 'status', id: 'keys-msg'});
  const list = h('div', {id: 'key-list'});
  const draw = async () => {
    const k = await api('GET', '/api/v1/keys');
    mount(list,
      (k.warnings || []).length ? h('div', {class: 'banner-review', id: 'key-warnings'}, h('ul', {}, k.warnings.map((w) => h('li', {}, w)))) : null,
      h('p', {id: 'key-lacking'}, t('admin.keys_lacking', {n: k.terminals_without_active_key})),
      h('div', {class: 'scroll'}, h('table', {},
        h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, t('admin.kid')), h('th', {scope: 'col'}, t('admin.key_state')),
          h('th', {scope: 'col'}, t('admin.created')), h('th', {scope: 'col'}, t('admin.not_after')), h('th', {scope: 'col'}, t('admin.actions')))),
        h('tbody', {}, k.keys.map((x) => h('tr', {'data-kid': x.kid},
          h('td', {class: 'mono'}, x.kid),
          h('td', {}, x.active ? h('span', {class: 'st st-active'}, t('admin.key_active'))
            : !x.retired_at || x.retired_at.startsWith('0001') ? h('span', {class: 'st st-pending'}, t('admin.key_trusted'))
              : h('span', {class: 'st st-cancelled'}, t('admin.key_retired'))),
          h('td', {class: 'nowrap'}, time(x.created_at)), h('td', {class: 'nowrap'}, time(x.not_after)),
          h('td', {}, x.retired_at && !x.retired_at.startsWith('0001') ? '' :
            h('button', {type: 'button', class: 'danger', id: 'retire-' + x.kid, onclick: () => retire(x.kid, false)}, t('admin.retire')))))))));
  };
  const retire = async (kid, force) => {
    if (!window.confirm(force ? t('admin.force_confirm', {kid}) : t('admin.retire_confirm', {kid}))) return;
    try {
      await api('POST', `/api/v1/keys/${encodeURIComponent(kid)}/retire`, force ? {force: true} : undefined);
      mount(msg, h('p', {class: 'note'}, t('admin.retired', {kid})));
      await draw();
    } catch (e) {
      mount(msg, h('div', {class: 'errors', role: 'alert', id: 'retire-refused'}, t('admin.retire_refused'), ' ', message(e),
        e.field === 'force' ? h('div', {class: 'actions'}, h('button', {type: 'button', class: 'danger', id: 'retire-force-' + kid,
          onclick: () => retire(kid, true)}, t('admin.force'))) : null));
    }
  };
  const days = h('input', {type: 'number', id: 'rotate-days', min: 30, max: 3650, value: 730});
  const rotate = h('button', {type: 'button', class: 'primary', id: 'rotate-key', onclick: async () => {
    if (!window.confirm(t('admin.rotate_confirm'))) return;
    try {
      const k = await api('POST', '/api/v1/keys/rotate', {valid_days: Number(days.value)});
      mount(msg, h('p', {class: 'note'}, t('admin.rotated', {kid: k.kid})));
      await draw();
    } catch (e) {
      mount(msg, errorBox(e));
    }
  }}, t('admin.rotate'));
  await draw();
  return mount(box, h('h2', {id: 'h-keys'}, t('admin.keys')), h('p', {class: 'muted'}, t('admin.keys_hint')), list,
    h('div', {class: 'inline'}, h('label', {for: 'rotate-days'}, t('admin.valid_days')), days, rotate), msg);
}
