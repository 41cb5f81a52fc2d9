// One Server-Sent Events stream (GET /api/v1/events, with the session
// cookie) for the whole page; views subscribe to the kinds they show. After
// a reconnect the views reload what they show, since events may have been
// missed while the stream was down.

const listeners = new Map(); // kind → Set of functions
let source = null;
let state = 'init';

function emit(kind, data) {
  for (const fn of listeners.get(kind) || []) {
    try { fn(data); } catch (e) { console.error(e); }
  }
}

function setState(s) {
  if (s === state) return;
  const was = state;
  state = s;
  emit('state', s);
  if (s === 'on' && was === 'off') emit('resync');
}

export function start() {
  if (source) return;
  source = new EventSource('/api/v1/events', {withCredentials: true});
  source.onopen = () => setState('on');
  source.onerror = () => {
    setState('off');
    // The browser retries by itself unless the answer was not a stream
    // (a 401 once the session ended): then ask the page what to do.
    if (source && source.readyState === EventSource.CLOSED) {
      source = null;
      emit('closed');
    }
  };
  for (const kind of ['delivery', 'terminal', 'fault', 'alert', 'report']) {
    source.addEventListener(kind, (ev) => {
      let e;
      try { e = JSON.parse(ev.data); } catch (err) { return; }
      emit(kind, e);
      emit('any', e);
    });
  }
}

export function stop() {
  if (source) source.close();
  source = null;
  setState('off');
}

export const current = () => state;

// on subscribes fn to a kind ('delivery', 'terminal', 'fault', 'alert',
// 'report', 'any', 'state', 'resync') and returns the unsubscribe.
export function on(kind, fn) {
  if (!listeners.has(kind)) listeners.set(kind, new Set());
  listeners.get(kind).add(fn);
  return () => listeners.get(kind).delete(fn);
}
