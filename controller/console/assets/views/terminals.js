// Terminals: the list with live state, and for technicians enrollment (the
// one-time token is shown once) and approval of terminals that connected
// with an unknown key.
import {h, mount, coalesce} from '../dom.js';
import {t, ago, time} from '../i18n.js';
import {api, getList, message} from '../api.js';
import {termState, termStatusLabel} from '../model.js';

export async function render(main, app) {
  const manage = app.can('terminals.manage');
  let data = await app.load();
  const filter = h('input', {type: 'search', id: 'terminal-filter', placeholder: t('terminals.filter'), 'aria-label': t('terminals.filter')});
  const table = h('div', {class: 'scroll', id: 'terminal-list'});
  const yes = (v) => (v === undefined || v === null ? '—' : v ? t('ok') : h('strong', {style: 'color:var(--bad)'}, t('bad')));

  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const list = [...data.terminals.values()]
      .filter((x) => !q || [x.name, x.id, data.areas.path(x.area_code), t('tstate.' + termState(x))].join(' ').toLowerCase().includes(q))
      .sort((a, b) => a.area_code.localeCompare(b.area_code) || a.name.localeCompare(b.name, 'zh-CN'));
    mount(table, list.length === 0 ? h('p', {class: 'empty'}, t('terminals.none')) : h('table', {},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, t('terminals.name')), h('th', {scope: 'col', class: 'wide'}, t('delivery.area')),
        h('th', {scope: 'col'}, t('delivery.state')), h('th', {scope: 'col'}, t('terminals.last_seen')),
        h('th', {scope: 'col', class: 'num wide'}, t('terminals.volume')), h('th', {scope: 'col', class: 'wide'}, t('terminals.relay')),
        h('th', {scope: 'col', class: 'wide'}, t('terminals.audio')), h('th', {scope: 'col', class: 'wide'}, t('terminals.firmware')))),
      h('tbody', {}, list.map((x) => h('tr', {'data-terminal': x.id},
        h('td', {}, h('a', {href: '#/terminals/' + x.id}, x.name)),
        h('td', {class: 'wide'}, data.areas.path(x.area_code)),
        h('td', {}, termStatusLabel(x)),
        h('td', {class: 'nowrap', title: time(x.last_seen)}, ago(x.last_seen)),
        h('td', {class: 'num wide'}, x.volume ?? '—'),
        h('td', {class: 'wide'}, yes(x.relay_ok)), h('td', {class: 'wide'}, yes(x.audio_ok)),
        h('td', {class: 'wide mono'}, x.firmware || '—'))))));
  };
  filter.addEventListener('input', draw);

  mount(main, h('h1', {}, t('terminals.title')),
    h('section', {class: 'panel'}, h('div', {class: 'field'}, filter), table),
    manage ? enrollPanel(app, data, async () => { data = await app.load(); draw(); }) : null,
    manage ? await pendingPanel(app, data) : null);
  draw();
  const again = coalesce(async () => {
    if (!app.current()) return;
    data = await app.load();
    draw();
  }, 1000);
  app.on('terminal', (e) => {
    const x = data.terminals.get(e.data.id);
    if (!x) return again();
    x.state = e.data.state;
    x.last_seen = e.at;
    if (e.data.heartbeat) Object.assign(x, {volume: e.data.heartbeat.volume, relay_ok: e.data.heartbeat.relay_ok, audio_ok: e.data.heartbeat.audio_ok});
    draw();
  });
  app.on('resync', again);
}

function enrollPanel(app, data, reload) {
  const area = h('select', {id: 'enroll-area'}, data.areas.villages().map((a) => h('option', {value: a.code}, data.areas.path(a.code))));
  const name = h('input', {type: 'text', id: 'enroll-name', placeholder: '大巷村3号'});
  const lat = h('input', {type: 'text', id: 'enroll-lat', inputmode: 'decimal', placeholder: '25.22'});
  const lon = h('input', {type: 'text', id: 'enroll-lon', inputmode: 'decimal', placeholder: '109.40'});
  const out = h('div', {id: 'enroll-result', role: 'status'});
  const form = h('form', {novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    const req = {area_code: area.value, name: name.value.trim()};
    if (lat.value.trim() || lon.value.trim()) {
      req.latitude = Number(lat.value);
      req.longitude = Number(lon.value);
      if (!Number.isFinite(req.latitude) || !Number.isFinite(req.longitude)) {
        mount(out, h('div', {class: 'errors'}, t('terminals.bad_coordinates')));
        return;
      }
    }
    if (!req.name) {
      mount(out, h('div', {class: 'errors'}, t('field.name') + '：' + t('check.name')));
      return;
    }
    try {
      const res = await api('POST', '/api/v1/terminals', req);
      mount(out, h('div', {class: 'note'}, h('p', {}, t('terminals.enrolled', {name: res.terminal.name, until: time(res.valid_until)})),
        h('div', {class: 'secret', id: 'enroll-token'}, res.enroll_token), h('p', {}, t('terminals.token_once'))));
      name.value = '';
      await reload();
    } catch (e) {
      mount(out, h('div', {class: 'errors'}, (e.field ? t('field.' + e.field) + '：' : '') + message(e)));
    }
  }},
  h('div', {class: 'grid cols-2'},
    h('div', {class: 'field'}, h('label', {for: 'enroll-area'}, t('field.area_code')), area),
    h('div', {class: 'field'}, h('label', {for: 'enroll-name'}, t('field.name')), name)),
  h('div', {class: 'inline'},
    h('div', {class: 'field'}, h('label', {for: 'enroll-lat'}, t('terminals.latitude')), lat),
    h('div', {class: 'field'}, h('label', {for: 'enroll-lon'}, t('terminals.longitude')), lon)),
  h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary', id: 'enroll-submit'}, t('terminals.enroll'))), out);
  return h('section', {class: 'panel', 'aria-labelledby': 'h-enroll'}, h('h2', {id: 'h-enroll'}, t('terminals.enroll_title')),
    h('p', {class: 'muted'}, t('terminals.enroll_intro')), form);
}

async function pendingPanel(app, data) {
  const box = h('div', {id: 'pending-list'});
  const load = async () => {
    const list = await getList('/api/v1/terminals/pending');
    mount(box, list.length === 0 ? h('p', {class: 'empty'}, t('terminals.no_pending')) : list.map((p) => {
      const area = h('select', {'aria-label': t('field.area_code')}, data.areas.villages().map((a) => h('option', {value: a.code}, data.areas.path(a.code))));
      const name = h('input', {type: 'text', 'aria-label': t('field.name'), value: p.hostname || ''});
      const err = h('div', {class: 'err hidden', role: 'alert'});
      return h('div', {class: 'panel'}, h('p', {}, h('span', {class: 'mono'}, p.kid), ' · ', p.hostname, ' · ', p.remote_addr, ' · ', ago(p.last_seen)),
        h('div', {class: 'inline'}, area, name, h('button', {type: 'button', onclick: async () => {
          try {
            await api('POST', `/api/v1/terminals/pending/${encodeURIComponent(p.kid)}/approve`, {area_code: area.value, name: name.value.trim()});
            app.toast(t('terminals.approved'));
            await load();
          } catch (e) {
            err.textContent = message(e);
            err.classList.remove('hidden');
          }
        }}, t('terminals.approve'))), err);
    }));
  };
  await load();
  return h('section', {class: 'panel', 'aria-labelledby': 'h-pending'}, h('h2', {id: 'h-pending'}, t('terminals.pending')), box);
}
