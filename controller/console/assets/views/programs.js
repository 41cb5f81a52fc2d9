// Scheduled programs (docs/schedules.md): the list, the form that creates
// or changes one (playlist, targets from the tree, recurrence, exceptions),
// and for one program what happened to each occurrence on each terminal.
import {h, mount, coalesce} from '../dom.js';
import {t, time, shortTime, label, duration} from '../i18n.js';
import {api, getList, message} from '../api.js';
import {targetsText} from '../model.js';
import {areaTree} from '../tree.js';

const kinds = ['once', 'daily', 'weekly', 'weeks', 'monthly'];
const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

// ruleText says a rule in the console's language, e.g. "每周一、三 07:00".
export function ruleText(r) {
  if (!r) return '';
  const sep = t('list.sep');
  const times = (r.times || []).join(sep);
  const days = (r.weekdays || []).map((d) => t('weekday.' + d)).join(sep);
  let when;
  switch (r.kind) {
    case 'once': when = t('rule.once', {date: r.from}); break;
    case 'daily': when = t('rule.daily'); break;
    case 'weekly': when = t('rule.weekly', {days}); break;
    case 'weeks': when = t('rule.weeks', {n: r.every_weeks, days: days || t('rule.from_weekday')}); break;
    case 'monthly': when = t('rule.monthly', {days: (r.month_days || []).join(sep)}); break;
    default: when = r.kind;
  }
  const parts = [when + ' ' + times];
  if (r.kind !== 'once') parts.push(r.until ? t('rule.range', {from: r.from, until: r.until}) : t('rule.from', {from: r.from}));
  if ((r.except || []).length) parts.push(t('rule.except', {dates: r.except.join(sep)}));
  return parts.join(t('list.clause'));
}

export async function render(main, app, params) {
  const [id, sub] = params;
  if (id === 'new' || sub === 'edit') return edit(main, app, id === 'new' ? null : id);
  if (id) return detail(main, app, id);
  return list(main, app);
}

async function list(main, app) {
  const [data, progs] = await Promise.all([app.load(), getList('/api/v1/programs')]);
  const manage = app.can('program.manage');
  mount(main, h('h1', {}, t('programs.title')),
    h('section', {class: 'panel'},
      manage ? h('div', {class: 'actions', style: 'margin:0 0 .6rem'}, h('a', {href: '#/programs/new', class: 'button primary', id: 'program-new'}, t('programs.new'))) : null,
      quietNote(app),
      progs.length === 0 ? h('p', {class: 'empty'}, t('programs.none')) : h('div', {class: 'scroll'}, h('table', {id: 'program-list'},
        h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, t('programs.name')), h('th', {scope: 'col'}, t('programs.rule')),
          h('th', {scope: 'col', class: 'wide'}, t('field.targets')), h('th', {scope: 'col'}, t('programs.next')), h('th', {scope: 'col', class: 'wide'}, t('programs.by')))),
        h('tbody', {}, progs.map((p) => h('tr', {'data-program': p.id},
          h('td', {}, h('a', {href: '#/programs/' + p.id}, p.title), p.priority === 20 ? h('span', {class: 'badge lv0'}, t('programs.daily')) : null),
          h('td', {}, ruleText(p.rule)),
          h('td', {class: 'wide'}, targetsText(p.targets, data.areas, data.terminals)),
          h('td', {class: 'nowrap'}, p.next && p.next.length ? shortTime(p.next[0]) : '—'),
          h('td', {class: 'wide'}, p.updated_by))))))));
}

const quietNote = (app) => (app.me.quiet_hours ? h('p', {class: 'note', id: 'quiet-note'}, t('programs.quiet', {hours: app.me.quiet_hours})) : null);

const stateLabel = (row) => {
  const key = row.state === 'skipped' && row.reason ? 'skip.' + row.reason : 'occ.' + row.state;
  const cls = {played: 'done', preempted: 'expired', skipped: 'failed', pending: 'pending', unreported: 'offline'}[row.state] || 'offline';
  return h('span', {class: 'st st-' + cls, 'data-state': row.state}, label('', key));
};

async function detail(main, app, id) {
  const [data, p] = await Promise.all([app.load(), api('GET', '/api/v1/programs/' + encodeURIComponent(id))]);
  const manage = app.can('program.manage') && !p.deleted_at;
  const media = await getList('/api/v1/media');
  const mediaName = (sha) => (media.find((m) => m.sha256 === sha) || {}).name || sha.slice(0, 12);
  const today = new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10); // Beijing date
  const addDays = (d, n) => new Date(Date.parse(d + 'T00:00:00Z') + n * 86400e3).toISOString().slice(0, 10);
  const fromIn = h('input', {type: 'date', id: 'occ-from', value: addDays(today, -3)});
  const untilIn = h('input', {type: 'date', id: 'occ-until', value: addDays(today, 2)});
  const box = h('div', {id: 'occurrences'});
  const msg = h('div', {role: 'status', id: 'program-msg'});

  const nextBox = h('dd', {id: 'program-next'});
  const drawNext = (next) => mount(nextBox, next && next.length
    ? h('ul', {style: 'margin:0;padding-left:1.2rem'}, next.map((x) => h('li', {class: 'nowrap'}, time(x))))
    : t('programs.no_next'));
  drawNext(p.next);
  const load = async () => {
    try {
      // A reload (the page is shown): the next occurrences move on too.
      if (fromIn.isConnected) drawNext((await api('GET', '/api/v1/programs/' + encodeURIComponent(id))).next);
      const tab = await api('GET', `/api/v1/programs/${encodeURIComponent(id)}/occurrences?from=${fromIn.value}&until=${untilIn.value}`);
      drawOccurrences(box, tab);
    } catch (e) {
      mount(box, h('div', {class: 'errors', role: 'alert'}, message(e)));
    }
  };
  const del = async () => {
    if (!window.confirm(t('programs.delete_confirm', {title: p.title}))) return;
    try {
      await api('DELETE', '/api/v1/programs/' + encodeURIComponent(id));
      app.toast(t('programs.deleted'));
      app.navigate('programs');
    } catch (e) {
      mount(msg, h('div', {class: 'errors'}, message(e)));
    }
  };
  mount(main,
    h('p', {}, h('a', {href: '#/programs'}, '← ', t('programs.title'))),
    h('h1', {id: 'program-title'}, p.title, p.deleted_at ? h('span', {class: 'badge lv0'}, t('programs.is_deleted')) : null),
    h('section', {class: 'panel'}, h('dl', {class: 'kv'},
      h('dt', {}, t('programs.rule')), h('dd', {id: 'program-rule'}, ruleText(p.rule)),
      h('dt', {}, t('field.targets')), h('dd', {}, targetsText(p.targets, data.areas, data.terminals)),
      h('dt', {}, t('programs.playlist')), h('dd', {}, h('ol', {style: 'margin:0;padding-left:1.2rem'}, p.media.map((sha) => h('li', {}, mediaName(sha))))),
      h('dt', {}, t('programs.priority')), h('dd', {}, t('programs.priority_' + p.priority)),
      h('dt', {}, t('field.repeat')), h('dd', {}, p.repeat),
      h('dt', {}, t('field.volume')), h('dd', {}, p.volume || t('programs.own_volume')),
      h('dt', {}, t('programs.late')), h('dd', {}, t('programs.minutes', {n: p.late_minutes})),
      h('dt', {}, t('programs.next')), nextBox,
      h('dt', {}, t('programs.by')), h('dd', {}, p.updated_by, ' · ', time(p.updated_at))),
    (p.notes || []).length ? h('div', {class: 'note'}, p.notes.join('；')) : null,
    manage ? h('div', {class: 'actions'}, h('a', {href: `#/programs/${encodeURIComponent(id)}/edit`, class: 'button', id: 'program-edit'}, t('programs.edit')),
      h('button', {type: 'button', class: 'danger', id: 'program-delete', onclick: del}, t('programs.delete'))) : null, msg),
    h('section', {class: 'panel', 'aria-labelledby': 'h-occ'}, h('h2', {id: 'h-occ'}, t('programs.happened')),
      h('p', {class: 'muted'}, t('programs.happened_hint')),
      h('div', {class: 'inline', style: 'margin-bottom:.6rem'},
        h('label', {for: 'occ-from'}, t('programs.from')), fromIn, h('label', {for: 'occ-until'}, t('programs.until')), untilIn,
        h('button', {type: 'button', id: 'occ-load', onclick: load}, t('programs.show'))),
      box));
  await load();
  // A terminal's report of an occurrence, or a stream that reconnected.
  const reload = coalesce(load, 300);
  app.on('report', reload);
  app.on('resync', reload);
}

function drawOccurrences(box, tab) {
  const counts = Object.entries(tab.counts || {}).map(([k, n]) => {
    const [state, reason] = k.split(':');
    return h('span', {style: 'margin-right:1rem'}, stateLabel({state, reason}), ' ', n);
  });
  mount(box, h('p', {id: 'occ-counts'}, counts.length ? counts : t('programs.no_occurrences')),
    tab.rows.length === 0 ? null : h('div', {class: 'scroll'}, h('table', {id: 'occ-table'},
      h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, t('programs.start')), h('th', {scope: 'col'}, t('programs.terminal')),
        h('th', {scope: 'col'}, t('programs.outcome')), h('th', {scope: 'col', class: 'wide'}, t('programs.detail')))),
      h('tbody', {}, tab.rows.map((r) => h('tr', {'data-state': r.state, 'data-terminal': r.terminal_id},
        h('td', {class: 'nowrap'}, time(r.start)),
        h('td', {}, h('a', {href: '#/terminals/' + r.terminal_id}, r.terminal_name || r.terminal_id)),
        h('td', {}, stateLabel(r)),
        h('td', {class: 'wide'}, rowDetail(r))))))));
}

function rowDetail(r) {
  const out = [];
  if (r.started) out.push(t('programs.played_at', {at: shortTime(r.started), len: duration(r.played_ms || 0)}));
  if (r.preempted_by) {
    out.push(t('programs.by_alert'), ' ', /^\d{35}$/.test(r.preempted_by) ? h('a', {href: '#/alerts/' + r.preempted_by, class: 'mono'}, r.preempted_by) : r.preempted_by);
  }
  out.push(h('span', {class: 'muted'}, ' · ' + t('programs.source_' + r.source)));
  return out;
}

async function edit(main, app, id) {
  const [data, media, old] = await Promise.all([app.load(), getList('/api/v1/media'),
    id ? api('GET', '/api/v1/programs/' + encodeURIComponent(id)) : null]);
  const r = old ? old.rule : {kind: 'daily', times: ['07:00'], from: new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10)};
  const playlist = old ? [...old.media] : [];
  const wrap = (name, lbl, ...body) => h('div', {class: 'field', id: 'w-' + name},
    lbl ? h('label', {for: 'f-' + name}, lbl) : null, body, h('div', {class: 'err hidden', id: 'e-' + name, role: 'alert'}));

  const titleIn = h('input', {type: 'text', id: 'f-title', maxlength: 200, value: old ? old.title : '', placeholder: t('programs.title_placeholder')});
  // Playlist: uploaded media in play order.
  const listBox = h('ol', {id: 'playlist', style: 'margin:.3rem 0;padding-left:1.4rem'});
  const addSel = h('select', {id: 'f-media', 'aria-label': t('programs.add_media')});
  const drawMedia = () => {
    mount(addSel, h('option', {value: ''}, t('programs.pick_media')), media.map((m) => h('option', {value: m.sha256}, `${m.name || m.sha256.slice(0, 12)} (${duration(m.duration_ms)})`)));
    mount(listBox, playlist.map((sha, i) => h('li', {},
      (media.find((m) => m.sha256 === sha) || {}).name || sha.slice(0, 12), ' ',
      h('button', {type: 'button', 'aria-label': t('programs.remove'), onclick: () => { playlist.splice(i, 1); drawMedia(); }}, '×'))));
  };
  addSel.addEventListener('change', () => {
    if (addSel.value) playlist.push(addSel.value);
    drawMedia();
  });
  const upload = app.can('media.upload') ? h('input', {type: 'file', id: 'f-upload', accept: '.mp3,.wav,audio/mpeg,audio/wav,audio/x-wav', 'aria-label': t('programs.upload')}) : null;
  if (upload) {
    upload.addEventListener('change', async () => {
      const file = upload.files[0];
      if (!file) return;
      clearErrors();
      try {
        const m = await api('POST', '/api/v1/media?name=' + encodeURIComponent(file.name), file);
        if (!media.some((x) => x.sha256 === m.sha256)) media.push(m);
        playlist.push(m.sha256);
        drawMedia();
      } catch (e) {
        showError('media', t('compose.bad_audio', {msg: message(e)}));
      }
    });
  }

  const picker = areaTree(data.areas, data.terminals, {picker: true, id: 'f-targets'});
  for (const a of (old && old.targets.areas) || []) picker.pick('area', a);
  for (const x of (old && old.targets.terminals) || []) picker.pick('terminal', x);

  const kindSel = h('select', {id: 'f-kind'}, kinds.map((k) => h('option', {value: k, selected: k === r.kind}, t('kind.' + k))));
  const timesIn = h('input', {type: 'text', id: 'f-times', value: (r.times || []).join(', '), placeholder: '07:00, 18:30', inputmode: 'numeric'});
  const dayBoxes = weekdays.map((d) => h('label', {}, h('input', {type: 'checkbox', name: 'weekday', value: d, checked: (r.weekdays || []).includes(d)}), t('weekday.' + d)));
  const everyIn = h('input', {type: 'number', id: 'f-every', min: 1, max: 52, value: r.every_weeks || 2});
  const mdaysIn = h('input', {type: 'text', id: 'f-mdays', value: (r.month_days || []).join(', '), placeholder: '1, 15'});
  const fromIn = h('input', {type: 'date', id: 'f-from', value: r.from || ''});
  const untilIn = h('input', {type: 'date', id: 'f-until', value: r.until || ''});
  const exceptIn = h('textarea', {id: 'f-except', rows: 2, placeholder: '2026-10-01, 2026-10-02'}, (r.except || []).join(', '));
  const prioSel = h('select', {id: 'f-priority'}, [10, 20].map((v) => h('option', {value: v, selected: (old ? old.priority : 10) === v}, t('programs.priority_' + v))));
  const repeatIn = h('input', {type: 'number', id: 'f-repeat', min: 1, max: 100, value: old ? old.repeat : 1});
  const volumeIn = h('input', {type: 'number', id: 'f-volume', min: 0, max: 100, value: old ? old.volume : 0});
  const lateIn = h('input', {type: 'number', id: 'f-late', min: 1, max: 720, value: old ? old.late_minutes : 10});
  const daysField = wrap('weekdays', null, h('fieldset', {}, h('legend', {}, t('programs.weekdays')), h('div', {class: 'inline'}, dayBoxes)));
  const everyField = wrap('every', t('programs.every_weeks'), everyIn);
  const mdaysField = wrap('mdays', t('programs.month_days'), mdaysIn);
  const untilField = wrap('until', t('programs.until_date'), untilIn);
  const exceptField = wrap('except', t('programs.except'), exceptIn, h('div', {class: 'hint'}, t('programs.except_hint')));
  const quiet = quietNote(app);
  const showKind = () => {
    const k = kindSel.value;
    daysField.classList.toggle('hidden', k !== 'weekly' && k !== 'weeks');
    everyField.classList.toggle('hidden', k !== 'weeks');
    mdaysField.classList.toggle('hidden', k !== 'monthly');
    untilField.classList.toggle('hidden', k === 'once');
    exceptField.classList.toggle('hidden', k === 'once');
  };
  kindSel.addEventListener('change', showKind);

  const summary = h('div', {class: 'errors hidden', id: 'program-errors', role: 'alert', tabindex: '-1'});
  const submit = h('button', {type: 'submit', class: 'primary', id: 'program-submit'}, old ? t('programs.save') : t('programs.create'));
  const list = (v) => v.split(/[,，、\s]+/).map((x) => x.trim()).filter(Boolean);
  const fieldOf = {title: 'title', media: 'media', areas: 'targets', terminals: 'targets', volume: 'volume', priority: 'priority', repeat: 'repeat',
    late_minutes: 'late', 'rule.kind': 'kind', 'rule.times': 'times', 'rule.weekdays': 'weekdays', 'rule.month_days': 'mdays',
    'rule.every_weeks': 'every', 'rule.from': 'from', 'rule.until': 'until', 'rule.except': 'except'};

  function showError(name, text) {
    const w = form.querySelector('#w-' + name) || form.querySelector('#w-form');
    w.classList.add('invalid');
    const e = w.querySelector('.err');
    e.textContent = text;
    e.classList.remove('hidden');
  }
  function clearErrors() {
    summary.classList.add('hidden');
    for (const w of form.querySelectorAll('.field.invalid')) w.classList.remove('invalid');
    for (const e of form.querySelectorAll('.field .err')) e.classList.add('hidden');
  }

  const request = () => {
    const k = kindSel.value;
    const rule = {kind: k, times: list(timesIn.value), from: fromIn.value};
    if (k === 'weekly' || k === 'weeks') rule.weekdays = dayBoxes.map((l) => l.firstChild).filter((x) => x.checked).map((x) => x.value);
    if (k === 'weeks') rule.every_weeks = Number(everyIn.value);
    if (k === 'monthly') rule.month_days = list(mdaysIn.value).map(Number);
    if (k !== 'once') {
      if (untilIn.value) rule.until = untilIn.value;
      rule.except = list(exceptIn.value);
    }
    const p = picker.picked();
    return {title: titleIn.value.trim(), media: [...playlist], areas: p.areas, terminals: p.terminals, volume: Number(volumeIn.value),
      priority: Number(prioSel.value), repeat: Number(repeatIn.value), late_minutes: Number(lateIn.value), rule};
  };
  const check = (req) => {
    const out = [];
    if (!req.title) out.push(['title', t('check.title')]);
    if (req.media.length === 0) out.push(['media', t('programs.check_media')]);
    if (req.areas.length + req.terminals.length === 0) out.push(['targets', t('check.targets')]);
    if (req.rule.times.length === 0 || !req.rule.times.every((x) => /^([01]\d|2[0-3]):[0-5]\d$/.test(x))) out.push(['times', t('programs.check_times')]);
    if (req.rule.weekdays && req.rule.kind === 'weekly' && req.rule.weekdays.length === 0) out.push(['weekdays', t('programs.check_weekdays')]);
    if (req.rule.month_days && (req.rule.month_days.length === 0 || !req.rule.month_days.every((d) => d >= 1 && d <= 31))) out.push(['mdays', t('programs.check_mdays')]);
    if (req.rule.kind === 'weeks' && !(req.rule.every_weeks >= 1 && req.rule.every_weeks <= 52)) out.push(['every', t('programs.check_every')]);
    if (req.rule.kind === 'once' && !req.rule.from) out.push(['from', t('programs.check_from')]);
    if (req.rule.until && req.rule.from && req.rule.until < req.rule.from) out.push(['until', t('programs.check_until')]);
    if (!(req.rule.except || []).every((d) => /^\d{4}-\d{2}-\d{2}$/.test(d))) out.push(['except', t('programs.check_except')]);
    if (!(req.repeat >= 1 && req.repeat <= 100)) out.push(['repeat', t('check.repeat')]);
    if (!(req.volume >= 0 && req.volume <= 100)) out.push(['volume', t('check.volume')]);
    if (!(req.late_minutes >= 1 && req.late_minutes <= 720)) out.push(['late', t('programs.check_late')]);
    return out;
  };
  const report = (problems) => {
    clearErrors();
    if (!problems.length) return;
    for (const [name, text] of problems) showError(name, text);
    mount(summary, h('strong', {}, t('compose.fix')), h('ul', {}, problems.map(([name, text]) => h('li', {}, t('pfield.' + name), '：', text))));
    summary.classList.remove('hidden');
    summary.focus();
  };

  const form = h('form', {class: 'panel', novalidate: true, id: 'program-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const req = request();
    const problems = check(req);
    report(problems);
    if (problems.length) return;
    if (!req.rule.from) delete req.rule.from;
    submit.disabled = true;
    try {
      const p = old ? await api('PATCH', '/api/v1/programs/' + encodeURIComponent(id), req) : await api('POST', '/api/v1/programs', req);
      app.toast(old ? t('programs.saved') : t('programs.created'));
      app.navigate('programs/' + p.id);
    } catch (e) {
      report([[fieldOf[e.field] || 'form', message(Object.assign(new Error(e.message.replace(/^[\w.]+: /, '')), {status: e.status}))]]);
    } finally {
      submit.disabled = false;
    }
  }},
  summary, quiet,
  h('div', {class: 'grid cols-2'},
    h('div', {},
      wrap('title', t('programs.name'), titleIn),
      wrap('media', t('programs.playlist'), listBox, addSel, upload ? h('div', {style: 'margin-top:.4rem'}, h('label', {for: 'f-upload', class: 'hint'}, t('programs.upload')), upload) : null),
      h('div', {class: 'inline'}, wrap('kind', t('programs.kind'), kindSel), wrap('times', t('programs.times'), timesIn)),
      daysField, everyField, mdaysField,
      h('div', {class: 'inline'}, wrap('from', t('programs.from_date'), fromIn), untilField),
      exceptField,
      h('div', {class: 'inline'}, wrap('priority', t('programs.priority'), prioSel), wrap('repeat', t('field.repeat'), repeatIn),
        wrap('volume', t('field.volume'), volumeIn), wrap('late', t('programs.late'), lateIn)),
      h('div', {class: 'hint'}, t('programs.late_hint'))),
    h('div', {}, wrap('targets', null, h('fieldset', {}, h('legend', {}, t('field.targets')), picker)))),
  h('div', {class: 'field', id: 'w-form'}, h('div', {class: 'err hidden', id: 'e-form', role: 'alert'})),
  h('div', {class: 'actions'}, submit, h('a', {href: old ? '#/programs/' + id : '#/programs', class: 'button'}, t('programs.back'))));
  drawMedia();
  showKind();
  mount(main, h('h1', {}, old ? t('programs.edit_title', {title: old.title}) : t('programs.new_title')), form);
}
