// One terminal: state, heartbeat history (a chart of the last day or week,
// and each new heartbeat while the page is open), volume, relay and audio
// health, faults and reports; volume and revocation for technicians.
import {h, mount, coalesce} from '../dom.js';
import {t, time, ago, shortTime, label} from '../i18n.js';
import {api, getList, message} from '../api.js';
import {termStatusLabel, reasonText, deliveryLabel} from '../model.js';
import {heartbeatChart} from '../chart.js';

export async function render(main, app, params) {
  const id = params[0];
  const manage = app.can('terminals.manage');
  const data = await app.load();
  let term = await api('GET', '/api/v1/terminals/' + encodeURIComponent(id));
  const [hb, reports, faults] = await Promise.all([
    api('GET', `/api/v1/terminals/${encodeURIComponent(id)}/heartbeat`),
    getList(`/api/v1/terminals/${encodeURIComponent(id)}/reports?limit=50`),
    getList('/api/v1/faults?active=false'),
  ]);
  const beats = hb.heartbeat ? [{at: hb.last_seen, hb: hb.heartbeat, stored: true}] : [];
  const info = h('section', {class: 'panel', id: 'terminal-info'});
  const beatBox = h('div', {class: 'scroll', id: 'heartbeats'});
  const chartBox = h('div', {id: 'heartbeat-history'});
  const span = h('select', {id: 'history-span', 'aria-label': t('chart.span')},
    h('option', {value: '24'}, t('chart.day')), h('option', {value: '168'}, t('chart.week')));
  let history = {points: [], since: new Date()};
  const drawChart = () => mount(chartBox, heartbeatChart(history.points, history.since, new Date()));
  const loadHistory = async () => {
    const since = new Date(Date.now() - Number(span.value) * 3600e3);
    const got = await api('GET', `/api/v1/terminals/${encodeURIComponent(id)}/heartbeats?since=${encodeURIComponent(since.toISOString())}`);
    history = {points: got.points, since};
    drawChart();
  };
  span.addEventListener('change', () => loadHistory().catch((e) => mount(chartBox, h('div', {class: 'errors'}, message(e)))));
  const redrawChart = coalesce(drawChart, 1000);
  const onResize = () => (chartBox.isConnected ? redrawChart() : window.removeEventListener('resize', onResize));
  window.addEventListener('resize', onResize);
  const yes = (v) => (v === undefined || v === null ? '—' : v ? t('ok') : h('strong', {style: 'color:var(--bad)'}, t('bad')));

  const drawInfo = () => {
    const last = beats.length ? beats[beats.length - 1].hb : null;
    mount(info, h('dl', {class: 'kv'},
      h('dt', {}, t('delivery.state')), h('dd', {id: 'terminal-state'}, termStatusLabel(term)),
      h('dt', {}, t('delivery.area')), h('dd', {}, data.areas.path(term.area_code), ' ', h('span', {class: 'muted mono'}, term.area_code)),
      h('dt', {}, t('terminals.id')), h('dd', {class: 'mono'}, term.id),
      h('dt', {}, t('terminals.last_seen')), h('dd', {}, time(term.last_seen), ' (', ago(term.last_seen), ')'),
      h('dt', {}, t('terminals.volume')), h('dd', {id: 'terminal-volume'}, term.volume ?? '—'),
      h('dt', {}, t('terminals.relay')), h('dd', {}, yes(term.relay_ok), last ? [' · ', last.relay_on ? t('terminals.relay_on') : t('terminals.relay_off')] : null),
      h('dt', {}, t('terminals.audio')), h('dd', {}, yes(term.audio_ok)),
      h('dt', {}, t('terminals.firmware')), h('dd', {class: 'mono'}, term.firmware || '—'),
      last ? [h('dt', {}, t('terminals.uptime')), h('dd', {}, Math.round(last.uptime_s / 60) + ' ' + t('time.minutes')),
        h('dt', {}, t('terminals.cache')), h('dd', {}, (last.cache_bytes / 1048576).toFixed(1) + ' MB'),
        h('dt', {}, t('terminals.pending_reports')), h('dd', {}, last.pending_reports)] : null,
      typeof term.latitude === 'number' ? [h('dt', {}, t('terminals.location')), h('dd', {}, `${term.latitude.toFixed(5)}°N ${term.longitude.toFixed(5)}°E`)] : null,
      h('dt', {}, t('terminals.enrolled_at')), h('dd', {}, time(term.enrolled_at))));
  };

  const drawBeats = () => mount(beatBox, beats.length === 0 ? h('p', {class: 'empty'}, t('terminals.no_heartbeat')) : h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, t('terminals.time')), h('th', {}, t('delivery.state')), h('th', {class: 'num'}, t('terminals.volume')),
      h('th', {}, t('terminals.relay')), h('th', {}, t('terminals.audio')), h('th', {class: 'wide'}, t('terminals.playing')))),
    h('tbody', {}, beats.slice().reverse().map((b) => h('tr', {},
      h('td', {class: 'nowrap'}, shortTime(b.at), b.stored ? h('span', {class: 'muted'}, ' ' + t('terminals.stored')) : null),
      h('td', {}, t('tstate.' + (b.hb.state || 'offline'))), h('td', {class: 'num'}, b.hb.volume ?? '—'),
      h('td', {}, yes(b.hb.relay_ok)), h('td', {}, yes(b.hb.audio_ok)), h('td', {class: 'wide mono'}, b.hb.playing || '—'))))));

  const mine = faults.filter((f) => f.terminal_id === id);
  const reportRow = (r) => {
    const rep = r.report;
    let what = '';
    if (rep.receipt) what = [deliveryLabel(rep.receipt.state), ' ', reasonText(rep.receipt.reason, rep.receipt.detail), ' ',
      rep.receipt.ebm_id ? h('a', {href: '#/alerts/' + rep.receipt.ebm_id, class: 'mono'}, rep.receipt.ebm_id) : ''];
    else if (rep.fault) what = `${label('fault.', rep.fault.code)} ${rep.fault.active ? t('fault.raised') : t('fault.cleared')}：${rep.fault.message}`;
    else if (rep.rejection) what = `${label('reason.', rep.rejection.reason)}：${rep.rejection.detail}`;
    else if (rep.switch) what = t('switch.' + rep.switch.action, {from: rep.switch.from || '—', to: rep.switch.to || '—'});
    else if (rep.occurrence) what = [label('occ.', rep.occurrence.state), ' ',
      rep.occurrence.reason ? label('skip.', rep.occurrence.reason) + ' ' : '',
      rep.occurrence.program_id ? h('a', {href: '#/programs/' + rep.occurrence.program_id}, t('switch.program')) : ''];
    else what = JSON.stringify(rep[rep.kind] || {});
    return h('tr', {}, h('td', {class: 'nowrap'}, shortTime(r.received_at)), h('td', {}, label('report.', rep.kind)), h('td', {}, what));
  };

  mount(main,
    h('p', {}, h('a', {href: '#/terminals'}, '← ', t('terminals.title'))),
    h('h1', {}, term.name), info,
    manage && term.status === 'active' ? controls(app, term, () => reloadTerm()) : null,
    h('section', {class: 'panel', 'aria-labelledby': 'h-beats'}, h('h2', {id: 'h-beats'}, t('terminals.heartbeats')),
      h('div', {class: 'inline', style: 'justify-content:space-between'}, h('p', {class: 'muted', style: 'margin:0'}, t('chart.hint')), span),
      chartBox,
      h('p', {class: 'muted'}, t('terminals.heartbeats_hint')), beatBox),
    h('section', {class: 'panel', 'aria-labelledby': 'h-faults'}, h('h2', {id: 'h-faults'}, t('terminals.faults')),
      mine.length === 0 ? h('p', {class: 'empty'}, t('overview.no_faults')) : h('ul', {}, mine.map((f) => h('li', {},
        f.active ? h('strong', {style: 'color:var(--bad)'}, t('fault.active')) : h('span', {class: 'muted'}, t('fault.cleared')), ' ',
        label('fault.', f.code), '：', f.message, ' ', h('span', {class: 'muted'}, time(f.since)))))),
    h('section', {class: 'panel', 'aria-labelledby': 'h-reports'}, h('h2', {id: 'h-reports'}, t('terminals.reports')),
      reports.length === 0 ? h('p', {class: 'empty'}, t('terminals.no_reports')) : h('div', {class: 'scroll'}, h('table', {},
        h('thead', {}, h('tr', {}, h('th', {}, t('terminals.time')), h('th', {}, t('terminals.kind')), h('th', {}, t('terminals.what')))),
        h('tbody', {}, reports.map(reportRow))))));
  drawInfo();
  drawBeats();
  await loadHistory();

  const reloadTerm = async () => {
    term = await api('GET', '/api/v1/terminals/' + encodeURIComponent(id));
    drawInfo();
  };
  app.on('terminal', (e) => {
    if (e.data.id !== id) return;
    term.state = e.data.state;
    term.last_seen = e.at;
    if (e.data.heartbeat) {
      const b = e.data.heartbeat;
      Object.assign(term, {volume: b.volume, relay_ok: b.relay_ok, audio_ok: b.audio_ok, firmware: b.firmware || term.firmware});
      beats.push({at: e.at, hb: b});
      if (beats.length > 60) beats.shift();
      drawBeats();
    }
    history.points.push(Object.assign({at: e.at || new Date().toISOString(), state: e.data.state}, e.data.heartbeat ? {
      volume: e.data.heartbeat.volume, relay_ok: e.data.heartbeat.relay_ok, relay_on: e.data.heartbeat.relay_on,
      audio_ok: e.data.heartbeat.audio_ok, playing: e.data.heartbeat.playing} : {}));
    redrawChart();
    drawInfo();
  });
  app.on('fault', (e) => { if (e.data.terminal_id === id) reloadTerm().catch(() => {}); });
}

function controls(app, term, reload) {
  const vol = h('input', {type: 'range', id: 'volume-range', min: 0, max: 100, value: term.volume ?? 60, 'aria-label': t('terminals.volume')});
  const num = h('output', {for: 'volume-range', id: 'volume-value'}, String(vol.value));
  vol.addEventListener('input', () => { num.textContent = vol.value; });
  const msg = h('div', {role: 'status', id: 'terminal-msg'});
  const setVolume = h('button', {type: 'button', class: 'primary', id: 'set-volume', onclick: async () => {
    try {
      await api('POST', `/api/v1/terminals/${encodeURIComponent(term.id)}/config`, {volume: Number(vol.value)});
      mount(msg, h('p', {class: 'note'}, t('terminals.volume_sent', {v: vol.value})));
    } catch (e) {
      mount(msg, h('div', {class: 'errors'}, t('terminals.volume') + '：' + message(e)));
    }
  }}, t('terminals.set_volume'));
  const testTone = h('button', {type: 'button', id: 'test-tone', onclick: async () => {
    testTone.disabled = true;
    try {
      const a = await api('POST', `/api/v1/terminals/${encodeURIComponent(term.id)}/test-tone`);
      app.toast(t('terminals.test_tone_sent'));
      app.navigate('alerts/' + a.id);
    } catch (e) {
      mount(msg, h('div', {class: 'errors'}, t('terminals.test_tone') + '：' + message(e)));
    } finally {
      testTone.disabled = false;
    }
  }}, t('terminals.test_tone'));
  const revoke = h('button', {type: 'button', class: 'danger', id: 'revoke', onclick: async () => {
    if (!window.confirm(t('terminals.revoke_confirm', {name: term.name}))) return;
    try {
      await api('POST', `/api/v1/terminals/${encodeURIComponent(term.id)}/revoke`);
      app.toast(t('terminals.revoked'));
      await reload();
      app.navigate('terminals');
    } catch (e) {
      mount(msg, h('div', {class: 'errors'}, message(e)));
    }
  }}, t('terminals.revoke'));
  return h('section', {class: 'panel', 'aria-labelledby': 'h-controls'}, h('h2', {id: 'h-controls'}, t('terminals.controls')),
    h('div', {class: 'inline'}, h('label', {for: 'volume-range'}, t('terminals.volume')), vol, num, setVolume),
    h('div', {class: 'inline'}, testTone, h('span', {class: 'hint'}, t('terminals.test_tone_hint'))),
    h('div', {class: 'actions'}, revoke), msg);
}

