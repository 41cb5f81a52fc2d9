// Compose an alert or a daily notice: class, level, event type, targets
// from the tree, an uploaded recording to listen to before sending, repeat,
// validity, start now or at a time, and the drill flag.
import {h, mount} from '../dom.js';
import {t, localInput, fromLocalInput, duration} from '../i18n.js';
import {api, message} from '../api.js';
import {levels} from '../model.js';
import {areaTree} from '../tree.js';
import {ttsBox} from './tts.js';

// API field → the form field that holds it.
const fieldOf = {
  class: 'class', msg_type: 'drill', level: 'level', event_type: 'event', title: 'title', areas: 'targets',
  terminals: 'targets', media: 'audio', repeat: 'repeat', volume: 'volume', valid_minutes: 'valid', expires: 'valid',
  not_before: 'start', play_at: 'start', issue_now: 'issue-now',
};

// heavyKbps is the bitrate above which an upload is flagged: twice a
// 64 kbit/s MP3, under any uncompressed WAV but an 8 kHz mono one.
const heavyKbps = 128;

// Common event type codes (GB/T 35561 classes); any 5 characters may be typed.
const eventTypes = ['00000', '11000', '11A00', '11B00', '11C00', '11D00', '12000', '13000', '14000'];

export async function render(main, app) {
  const me = app.me;
  const {areas, terminals} = await app.load();
  const mayEmergency = app.can('alert.emergency');
  const pol = me.policy || {};
  let media = null; // the uploaded file's description
  let previewURL = '';

  const wrap = (name, label, ...body) => h('div', {class: 'field', id: 'w-' + name},
    label ? h('label', {for: 'f-' + name, id: 'l-' + name}, label) : null, body,
    h('div', {class: 'err hidden', id: 'e-' + name, role: 'alert'}));

  // Class and level.
  const classBox = h('fieldset', {id: 'f-class'}, h('legend', {}, t('field.class')),
    h('div', {class: 'inline'},
      mayEmergency ? h('label', {}, h('input', {type: 'radio', name: 'class', value: 'emergency', checked: true}), t('class.emergency')) : null,
      h('label', {}, h('input', {type: 'radio', name: 'class', value: 'daily', checked: !mayEmergency}), t('class.daily'))));
  const levelBox = h('fieldset', {id: 'f-level'}, h('legend', {}, t('field.level')), h('div', {class: 'inline', id: 'levels'}));
  const eventIn = h('input', {type: 'text', id: 'f-event', list: 'event-types', maxlength: 5, value: '00000', autocomplete: 'off', spellcheck: 'false'});
  const titleIn = h('input', {type: 'text', id: 'f-title', maxlength: 200, placeholder: t('compose.title_placeholder')});

  // Targets.
  const picked = h('p', {class: 'hint', id: 'targets-summary'});
  const picker = areaTree(areas, terminals, {picker: true, id: 'f-targets', onchange: () => showPicked()});
  const showPicked = () => {
    const p = picker.picked();
    const names = [...p.areas.map((c) => areas.path(c)), ...p.terminals.map((id) => (terminals.get(id) || {}).name || id)];
    picked.textContent = names.length ? t('compose.picked', {names: names.join('、')}) : t('compose.picked_none');
  };

  // Audio.
  const audioIn = h('input', {type: 'file', id: 'f-audio', accept: '.mp3,.wav,audio/mpeg,audio/wav,audio/x-wav', 'aria-describedby': 'audio-status'});
  const chosen = h('span', {class: 'filebtn', 'aria-hidden': 'true'}, t('compose.choose_audio'));
  const audioStatus = h('div', {class: 'hint', id: 'audio-status', role: 'status'}, t('compose.audio_hint'));
  const player = h('audio', {controls: true, preload: 'metadata', id: 'audio-preview', class: 'hidden'});
  audioIn.addEventListener('change', async () => {
    clearError('audio');
    media = null;
    const file = audioIn.files[0];
    chosen.textContent = file ? file.name : t('compose.choose_audio');
    if (previewURL) URL.revokeObjectURL(previewURL);
    player.classList.add('hidden');
    if (!file) return;
    previewURL = URL.createObjectURL(file);
    player.src = previewURL;
    audioStatus.textContent = t('compose.uploading', {name: file.name});
    try {
      media = await api('POST', '/api/v1/media?name=' + encodeURIComponent(file.name), file);
      player.classList.remove('hidden');
      audioStatus.textContent = t('compose.uploaded', {name: media.name || file.name, format: media.format.toUpperCase(), duration: duration(media.duration_ms)});
      // Every terminal gets its own copy, paced as it plays: a heavy file
      // (an uncompressed WAV) makes a large fan-out stall
      // (docs/operations.md, "The network an alert needs").
      const kbps = Math.round(media.size * 8 / Math.max(media.duration_ms, 1));
      if (kbps > heavyKbps) audioStatus.textContent += ' ' + t('compose.heavy', {kbps});
    } catch (e) {
      audioStatus.textContent = t('compose.audio_hint');
      showError('audio', e.status === 413 ? t('srv.too_big') : t('compose.bad_audio', {msg: message(e)}));
    }
  });

  const repeatIn = h('input', {type: 'number', id: 'f-repeat', min: 1, max: 100, value: 1, inputmode: 'numeric'});
  const volumeIn = h('input', {type: 'number', id: 'f-volume', min: 0, max: 100, value: 0, inputmode: 'numeric'});
  const validIn = h('input', {type: 'number', id: 'f-valid', min: 1, max: 11520, value: 60, inputmode: 'numeric'});
  const startNow = h('input', {type: 'radio', name: 'start', value: 'now', checked: true, id: 'start-now'});
  const startAt = h('input', {type: 'radio', name: 'start', value: 'at', id: 'start-at'});
  const atIn = h('input', {type: 'datetime-local', id: 'f-start', value: localInput(new Date(Date.now() + 10 * 60000)), disabled: true, 'aria-label': t('compose.start_at_label')});
  // The widget speaks the browser's language; this says the time plainly.
  const atText = h('div', {class: 'hint', id: 'start-text', 'aria-live': 'polite'});
  const showAt = () => {
    atText.textContent = startAt.checked && atIn.value ? t('compose.start_at_text', {at: atIn.value.replace('T', ' ')}) : t('compose.beijing');
  };
  atIn.addEventListener('input', showAt);
  startNow.addEventListener('change', () => { atIn.disabled = true; showAt(); });
  startAt.addEventListener('change', () => { atIn.disabled = false; atIn.focus(); showAt(); });
  showAt();

  // Drill and issue-now.
  const drillIn = h('input', {type: 'checkbox', id: 'f-drill'});
  const drillKind = h('select', {id: 'f-drill-kind', 'aria-label': t('compose.drill_kind'), disabled: true},
    [3, 4, 5].map((k) => h('option', {value: k, selected: k === 5}, t('msgtype.' + k))));
  const drillBanner = h('div', {class: 'banner-drill hidden', id: 'drill-banner', role: 'status'}, t('compose.drill_banner'));
  drillIn.addEventListener('change', () => {
    drillKind.disabled = !drillIn.checked;
    drillBanner.classList.toggle('hidden', !drillIn.checked);
    update();
  });
  const issueNowIn = h('input', {type: 'checkbox', id: 'f-issue-now'});
  const issueNowBox = wrap('issue-now', null, h('div', {class: 'banner-review'},
    h('label', {style: 'display:flex;gap:.5rem;align-items:center;margin:0'}, issueNowIn, t('compose.issue_now'))),
  h('div', {class: 'hint'}, t('compose.issue_now_hint')));
  const approvalNote = h('div', {class: 'note', id: 'approval-note'});
  const submit = h('button', {type: 'submit', class: 'primary', id: 'compose-submit'}, t('compose.submit'));
  const summary = h('div', {class: 'errors hidden', id: 'compose-errors', role: 'alert', tabindex: '-1'});

  const klass = () => (form.querySelector('input[name=class]:checked') || {}).value || 'daily';
  const level = () => Number((form.querySelector('input[name=level]:checked') || {}).value || 0);

  function drawLevels() {
    const k = klass();
    const keep = level();
    const list = k === 'daily' ? [0, ...levels] : levels;
    const def = list.includes(keep) && !(k === 'emergency' && keep === 0) ? keep : (k === 'daily' ? 0 : 3);
    mount(levelBox.querySelector('#levels'), list.map((l) => h('label', {class: `badge lv${l}`, style: 'padding:.35rem .7rem;cursor:pointer'},
      h('input', {type: 'radio', name: 'level', value: l, checked: l === def, id: 'level-' + l}), t('level.' + l))));
  }

  function update() {
    const k = klass(), l = level();
    const needs = ((pol.approval || {})[k] || []).includes(l);
    const issueNow = pol.issue_now_level1 && k === 'emergency' && l === 1;
    issueNowBox.classList.toggle('hidden', !issueNow);
    if (!issueNow) issueNowIn.checked = false;
    approvalNote.textContent = needs ? (issueNowIn.checked ? t('compose.issue_now_note') : t('compose.needs_approval')) : t('compose.no_approval');
    submit.textContent = drillIn.checked ? t('compose.submit_drill') : needs && !issueNowIn.checked ? t('compose.submit_for_approval') : t('compose.submit');
  }

  function showError(name, text) {
    const w = form.querySelector('#w-' + name);
    const e = form.querySelector('#e-' + name);
    if (!w || !e) return false;
    w.classList.add('invalid');
    e.textContent = text;
    e.classList.remove('hidden');
    const input = form.querySelector('#f-' + name);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', 'e-' + name);
    }
    return true;
  }

  function clearError(name) {
    const w = form.querySelector('#w-' + name);
    if (!w) return;
    w.classList.remove('invalid');
    form.querySelector('#e-' + name).classList.add('hidden');
    const input = form.querySelector('#f-' + name);
    if (input) input.removeAttribute('aria-invalid');
  }

  function report(problems) {
    for (const name of [...Object.values(fieldOf), 'form']) clearError(name);
    if (problems.length === 0) {
      summary.classList.add('hidden');
      return;
    }
    mount(summary, h('strong', {}, t('compose.fix')), h('ul', {}, problems.map(([name, text]) => {
      const shown = showError(name, text);
      const label = t('field.' + name);
      return h('li', {}, shown ? h('a', {href: '#', onclick: (ev) => { ev.preventDefault(); (form.querySelector('#f-' + name) || form).focus(); }}, label) : label, '：', text);
    })));
    summary.classList.remove('hidden');
    summary.focus();
  }

  function check(req) {
    const out = [];
    if (!req.title) out.push(['title', t('check.title')]);
    if (req.areas.length + req.terminals.length === 0) out.push(['targets', t('check.targets')]);
    if (!media) out.push(['audio', t('check.audio')]);
    if (!(req.repeat >= 1 && req.repeat <= 100)) out.push(['repeat', t('check.repeat')]);
    if (!(req.volume >= 0 && req.volume <= 100)) out.push(['volume', t('check.volume')]);
    const mins = Number(validIn.value);
    if (!(mins >= 1 && mins <= 11520)) out.push(['valid', t('check.valid')]);
    if (startAt.checked && !(Date.parse(fromLocalInput(atIn.value)) > Date.now())) out.push(['start', t('check.start')]);
    if (!/^.{5}$/u.test(req.event_type)) out.push(['event', t('check.event')]);
    return out;
  }

  const form = h('form', {class: 'panel', novalidate: true, id: 'compose-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const p = picker.picked();
    const req = {
      class: klass(), msg_type: drillIn.checked ? Number(drillKind.value) : 1, level: level(),
      event_type: eventIn.value.trim(), title: titleIn.value.trim(), areas: p.areas, terminals: p.terminals,
      media: media ? [media.sha256] : [], repeat: Number(repeatIn.value), volume: Number(volumeIn.value),
      issue_now: issueNowIn.checked,
    };
    const problems = check(req);
    report(problems);
    if (problems.length) return;
    const mins = Number(validIn.value);
    if (startAt.checked) {
      const at = Date.parse(fromLocalInput(atIn.value));
      req.play_at = new Date(at).toISOString();
      req.expires = new Date(at + mins * 60000).toISOString();
    } else {
      req.valid_minutes = mins;
    }
    submit.disabled = true;
    try {
      const a = await api('POST', '/api/v1/alerts', req);
      app.toast(a.status === 'pending' ? t('compose.sent_pending') : t('compose.sent'));
      app.refreshBadges();
      app.navigate('alerts/' + a.id);
    } catch (e) {
      const name = fieldOf[e.field] || '';
      const text = message(Object.assign(new Error(e.message.replace(/^[\w.]+: /, '')), {status: e.status}));
      report([[name || 'form', text]]);
    } finally {
      submit.disabled = false;
    }
  }},
  summary, drillBanner,
  h('div', {class: 'grid cols-2'},
    h('div', {},
      wrap('class', null, classBox),
      wrap('level', null, levelBox),
      wrap('event', t('field.event'), eventIn, h('datalist', {id: 'event-types'}, eventTypes.map((c) => h('option', {value: c}, t('event.' + c)))),
        h('div', {class: 'hint'}, t('compose.event_hint'))),
      wrap('title', t('field.title'), titleIn),
      wrap('audio', t('field.audio'), h('span', {class: 'file'}, audioIn, chosen), audioStatus, player),
      ttsBox((m) => { media = m; clearError('audio'); audioStatus.textContent = t('compose.audio_hint'); player.classList.add('hidden'); }),
      h('div', {class: 'inline'},
        wrap('repeat', t('field.repeat'), repeatIn),
        wrap('volume', t('field.volume'), volumeIn),
        wrap('valid', t('field.valid'), validIn)),
      h('div', {class: 'hint', style: 'margin-top:-.6rem;margin-bottom:.9rem'}, t('compose.volume_hint')),
      wrap('start', null, h('fieldset', {}, h('legend', {}, t('field.start')),
        h('div', {class: 'inline'}, h('label', {}, startNow, t('compose.start_now')), h('label', {}, startAt, t('compose.start_at'))), atIn,
        atText)),
      me.may_drill ? wrap('drill', null, h('fieldset', {}, h('legend', {}, t('field.drill')),
        h('div', {class: 'inline'}, h('label', {}, drillIn, t('compose.drill')), drillKind))) : null,
      issueNowBox),
    h('div', {},
      wrap('targets', null, h('fieldset', {}, h('legend', {}, t('field.targets')), picker, picked)))),
  h('div', {class: 'field', id: 'w-form'}, h('div', {class: 'err hidden', id: 'e-form', role: 'alert'})),
  approvalNote,
  h('div', {class: 'actions'}, submit));

  // A field the operator touches loses its error; the summary goes with the last.
  const touched = (ev) => {
    const w = ev.target.closest('.field[id^="w-"]');
    if (w && w.id !== 'w-audio') clearError(w.id.slice(2));
    if (!form.querySelector('.field.invalid')) summary.classList.add('hidden');
  };
  form.addEventListener('input', touched);
  form.addEventListener('change', (ev) => {
    touched(ev);
    if (ev.target.name === 'class') drawLevels();
    update();
  });
  drawLevels();
  update();
  showPicked();
  mount(main, h('h1', {}, t('compose.title')), form);
}
