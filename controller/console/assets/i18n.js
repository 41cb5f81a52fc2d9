// Translations and formats. Chinese by default; English on request (kept in
// localStorage). Every time is shown in Beijing time, whatever the browser's
// own zone, because the county's records and the standards use it.

let dict = {};
let lang = 'zh-CN';
export const languages = ['zh-CN', 'en'];

export async function loadLanguage(want) {
  lang = languages.includes(want) ? want : 'zh-CN';
  const resp = await fetch(`/console/i18n/${lang}.json`, {credentials: 'same-origin'});
  dict = await resp.json();
  document.documentElement.lang = lang;
  try { localStorage.setItem('dalaba.lang', lang); } catch (e) { /* private mode */ }
  return lang;
}

export function savedLanguage() {
  try { return localStorage.getItem('dalaba.lang') || 'zh-CN'; } catch (e) { return 'zh-CN'; }
}

export const currentLanguage = () => lang;

// t looks a key up and fills {name} placeholders; a missing key shows itself.
export function t(key, vars) {
  let text = dict[key];
  if (text === undefined) return key;
  if (vars) text = text.replace(/\{(\w+)\}/g, (m, k) => (vars[k] !== undefined ? vars[k] : m));
  return text;
}

// has reports whether a key is translated.
export const has = (key) => dict[key] !== undefined;

// label translates a code under a prefix ('reason.', 'fault.'), or shows
// the code itself when it is one this console does not know yet.
export const label = (prefix, code) => (has(prefix + code) ? dict[prefix + code] : code);

const parts = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

function beijing(d) {
  const p = {};
  for (const x of parts.formatToParts(d)) p[x.type] = x.value;
  return p;
}

const zero = (iso) => !iso || iso.startsWith('0001-01-01');

// time formats an RFC 3339 time as "2026-05-01 10:00:00" in Beijing time.
export function time(iso) {
  if (zero(iso)) return '—';
  const p = beijing(new Date(iso));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

// shortTime drops the date when it is today (Beijing).
export function shortTime(iso) {
  if (zero(iso)) return '—';
  const full = time(iso);
  return full.slice(0, 10) === time(new Date().toISOString()).slice(0, 10) ? full.slice(11) : full.slice(0, 16);
}

// ago says how long ago a time was.
export function ago(iso) {
  if (zero(iso)) return t('time.never');
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return t('time.seconds_ago', {n: s});
  if (s < 3600) return t('time.minutes_ago', {n: Math.round(s / 60)});
  if (s < 86400) return t('time.hours_ago', {n: Math.round(s / 3600)});
  return t('time.days_ago', {n: Math.round(s / 86400)});
}

// localInput is a Beijing wall-clock value for <input type=datetime-local>.
export function localInput(d) {
  const p = beijing(d);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

// fromLocalInput reads such a value as Beijing time, RFC 3339.
export function fromLocalInput(v) {
  if (!v) return '';
  return (v.length === 16 ? v + ':00' : v) + '+08:00';
}

export function percent(x) {
  return (Math.round(x * 1000) / 10).toFixed(1) + '%';
}

export function duration(ms) {
  const s = Math.round(ms / 1000);
  return s < 60 ? t('time.sec', {n: s}) : t('time.min_sec', {m: Math.floor(s / 60), s: s % 60});
}
