// Live speech (喊话): pick targets as when composing, then press and hold
// the button (or, on a phone, tap once to start and again to stop) to speak
// through the microphone to the loudspeakers. The microphone is read by an
// AudioWorklet (../speak-worklet.js) as 16 kHz s16le mono frames of 20 ms
// and sent over the live WebSocket (docs/api.md, "Live speech").
import {h, mount} from '../dom.js';
import {t} from '../i18n.js';
import {message} from '../api.js';
import {areaTree} from '../tree.js';

export async function render(main, app) {
  const {areas, terminals} = await app.load();
  const pol = app.me.policy || {};
  // Emergency live speech only where the county lets that level go without approval.
  const freeLevels = app.can('alert.emergency') ? [1, 2, 3, 4].filter((l) => !((pol.approval || {}).emergency || []).includes(l)) : [];

  const picked = h('p', {class: 'hint', id: 'speak-summary'});
  const picker = areaTree(areas, terminals, {picker: true, id: 'speak-targets', onchange: () => showPicked()});
  const showPicked = () => {
    const p = picker.picked();
    const names = [...p.areas.map((c) => areas.path(c)), ...p.terminals.map((id) => (terminals.get(id) || {}).name || id)];
    picked.textContent = names.length ? t('compose.picked', {names: names.join('、')}) : t('compose.picked_none');
  };
  showPicked();
  const titleIn = h('input', {type: 'text', id: 'speak-title', maxlength: 200, value: t('speak.default_title')});
  const kindSel = h('select', {id: 'speak-class'},
    h('option', {value: 'daily:0'}, t('class.daily')),
    freeLevels.map((l) => h('option', {value: 'emergency:' + l}, t('class.emergency') + ' · ' + t('level.' + l))));
  const volumeIn = h('input', {type: 'number', id: 'speak-volume', min: 0, max: 100, value: 0, inputmode: 'numeric'});
  const toggleIn = h('input', {type: 'checkbox', id: 'speak-toggle'});
  const talk = h('button', {type: 'button', class: 'primary', id: 'speak-button', 'aria-pressed': 'false',
    style: 'font-size:1.3rem;padding:1.2rem 2.4rem;touch-action:none;user-select:none'}, t('speak.hold'));
  const level = h('meter', {id: 'speak-level', min: 0, max: 1, low: 0.05, high: 0.9, optimum: 0.3, value: 0, style: 'width:100%;height:1.2rem'});
  const clock = h('span', {id: 'speak-elapsed', style: 'font-variant-numeric:tabular-nums;font-size:1.2rem'}, '00:00');
  const status = h('div', {class: 'note', id: 'speak-status', role: 'status', 'aria-live': 'polite'}, t('speak.ready'));
  const errBox = h('div', {class: 'errors hidden', id: 'speak-error', role: 'alert'});

  let session = null; // the session in progress

  const showError = (text) => {
    errBox.textContent = text;
    errBox.classList.toggle('hidden', !text);
  };
  const setStatus = (key, vars) => { status.textContent = t(key, vars); };
  const updateButton = () => {
    const on = !!session;
    talk.setAttribute('aria-pressed', on ? 'true' : 'false');
    talk.textContent = on ? (toggleIn.checked ? t('speak.tap_stop') : t('speak.release')) : (toggleIn.checked ? t('speak.tap_start') : t('speak.hold'));
    talk.classList.toggle('danger', on);
  };

  async function start() {
    if (session) return;
    showError('');
    const p = picker.picked();
    if (p.areas.length + p.terminals.length === 0) {
      showError(t('check.targets'));
      return;
    }
    const [klass, lvl] = kindSel.value.split(':');
    const req = {class: klass, level: Number(lvl), title: titleIn.value.trim(), areas: p.areas, terminals: p.terminals, volume: Number(volumeIn.value)};
    const s = {ws: null, ctx: null, stream: null, started: 0, timer: 0, live: false, ended: false};
    session = s;
    updateButton();
    setStatus('speak.connecting');
    try {
      s.stream = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true}});
      s.ctx = new AudioContext();
      await s.ctx.audioWorklet.addModule('/console/speak-worklet.js');
      const node = new AudioWorkletNode(s.ctx, 'dalaba-pcm16k');
      s.ctx.createMediaStreamSource(s.stream).connect(node);
      node.port.onmessage = (ev) => {
        level.value = ev.data.peak;
        if (s.live && s.ws.readyState === WebSocket.OPEN) s.ws.send(ev.data.pcm);
      };
    } catch (e) {
      finish(s, t('speak.no_mic', {msg: e.message || String(e)}));
      return;
    }
    if (session !== s) { finish(s); return; } // released while the microphone opened
    s.ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/live');
    s.ws.binaryType = 'arraybuffer';
    s.ws.onopen = () => s.ws.send(JSON.stringify(req));
    s.ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === 'started') {
        s.live = true;
        s.started = Date.now();
        s.timer = setInterval(() => { clock.textContent = mmss(Date.now() - s.started); }, 250);
        setStatus('speak.live', {online: m.online, terminals: m.terminals});
        if (session !== s) stop(s); // released before the controller answered
      } else if (m.type === 'error') {
        finish(s, message(Object.assign(new Error(m.error), {status: 400})));
      } else if (m.type === 'ended') {
        s.ended = true;
        finish(s, '', t('speak.ended', {seconds: m.seconds, reason: t('speak.reason.' + m.reason)}));
        if (m.alert_id) app.toast(t('speak.ended_toast'));
      }
    };
    s.ws.onclose = () => { if (!s.ended) finish(s, s.live ? t('speak.lost') : t('speak.refused')); };
  }

  // stop asks the controller to end the session; it answers "ended".
  function stop(s = session) {
    if (!s) return;
    if (session === s) session = null;
    updateButton();
    if (s.live && s.ws && s.ws.readyState === WebSocket.OPEN) {
      s.live = false;
      s.ws.send(JSON.stringify({type: 'end'}));
      setStatus('speak.ending');
    } else if (!s.ws || s.ws.readyState !== WebSocket.CONNECTING) {
      finish(s);
    }
    release(s);
  }

  function release(s) {
    if (s.stream) s.stream.getTracks().forEach((tr) => tr.stop());
    if (s.ctx && s.ctx.state !== 'closed') s.ctx.close();
    clearInterval(s.timer);
    level.value = 0;
  }

  function finish(s, err, note) {
    release(s);
    s.live = false;
    if (s.ws && s.ws.readyState <= WebSocket.OPEN) s.ws.close();
    if (session === s) session = null;
    updateButton();
    if (err) showError(err);
    setStatus(note ? 'speak.note' : 'speak.ready', {note});
  }

  // Press and hold; with the toggle, tap to start and tap to stop.
  talk.addEventListener('pointerdown', (ev) => {
    if (toggleIn.checked) return;
    ev.preventDefault();
    try { talk.setPointerCapture(ev.pointerId); } catch (e) { /* a synthetic pointer */ }
    start();
  });
  for (const type of ['pointerup', 'pointercancel']) talk.addEventListener(type, () => { if (!toggleIn.checked) stop(); });
  talk.addEventListener('click', () => {
    if (!toggleIn.checked) return;
    if (session) stop(); else start();
  });
  talk.addEventListener('keydown', (ev) => { // keyboard: hold the space bar
    if (ev.key === ' ' && !ev.repeat && !toggleIn.checked) { ev.preventDefault(); start(); }
  });
  talk.addEventListener('keyup', (ev) => { if (ev.key === ' ' && !toggleIn.checked) stop(); });
  toggleIn.addEventListener('change', () => { stop(); updateButton(); });

  mount(main,
    h('h1', {}, t('nav.speak')),
    h('div', {class: 'grid cols-2'},
      h('div', {class: 'panel'},
        errBox,
        h('div', {class: 'field'}, h('label', {for: 'speak-title'}, t('field.title')), titleIn),
        h('div', {class: 'inline'},
          h('div', {class: 'field'}, h('label', {for: 'speak-class'}, t('field.class')), kindSel),
          h('div', {class: 'field'}, h('label', {for: 'speak-volume'}, t('field.volume')), volumeIn)),
        h('div', {class: 'hint'}, t('speak.hint')),
        h('div', {class: 'actions', style: 'flex-direction:column;align-items:stretch;gap:.8rem'},
          talk,
          h('label', {}, toggleIn, ' ', t('speak.toggle')),
          h('div', {class: 'inline'}, h('span', {}, t('speak.elapsed')), clock),
          h('label', {for: 'speak-level'}, t('speak.level')), level,
          status)),
      h('div', {class: 'panel'}, h('fieldset', {}, h('legend', {}, t('field.targets')), picker, picked))));
  updateButton();
  return () => { if (session) stop(); };
}

function mmss(ms) {
  const s = Math.floor(ms / 1000);
  return String(Math.floor(s / 60)).padStart(2, '0') + ':' + String(s % 60).padStart(2, '0');
}
