// The JSON API (docs/api.md): the session cookie goes with every request,
// and state-changing ones carry the session's CSRF token.
import {t, has, currentLanguage} from './i18n.js';

let csrf = '';
export const setCSRF = (v) => { csrf = v || ''; };

// APIError is an error answer: {error, field} and the HTTP status.
export class APIError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.field = (body && body.field) || '';
  }
}

// api calls a route. A plain object is sent as JSON; a Blob, File or
// ArrayBuffer as the raw body (audio uploads).
export async function api(method, path, body) {
  const opts = {method, credentials: 'same-origin', headers: {}};
  if (method !== 'GET' && method !== 'HEAD') opts.headers['X-CSRF-Token'] = csrf;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    opts.body = body;
    opts.headers['Content-Type'] = 'application/octet-stream';
  } else if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers['Content-Type'] = 'application/json';
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new APIError(0, {error: t('err.network')});
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = {error: text.slice(0, 200)}; }
  if (!resp.ok) {
    const err = new APIError(resp.status, data);
    if (resp.status === 401 && path !== '/api/v1/signin') window.dispatchEvent(new CustomEvent('dalaba:signedout'));
    throw err;
  }
  return data;
}

// Server messages are English; these patterns give the common ones in
// Chinese. Anything else is shown as the server wrote it.
const known = [
  [/wrong name or password/, 'srv.wrong_password'],
  [/the current password is wrong/, 'srv.current_password'],
  [/too many failed sign-ins/, 'srv.locked'],
  [/use at least (\d+)/, 'srv.pw_short'],
  [/contains the user name/, 'srv.pw_name'],
  [/well-known password/, 'srv.pw_common'],
  [/repeats one character/, 'srv.pw_repeat'],
  [/mix at least two kinds/, 'srv.pw_kinds'],
  [/a title is required/, 'srv.title_required'],
  [/upload audio first/, 'srv.media_required'],
  [/no uploaded media/, 'srv.media_unknown'],
  [/no enrolled terminal in the chosen/, 'srv.no_terminals'],
  [/outside your areas/, 'srv.outside_areas'],
  [/may send daily notices only/, 'srv.daily_only'],
  [/drills may be sent by/, 'srv.drill_roles'],
  [/already ended/, 'srv.window_ended'],
  [/longer than the maximum/, 'srv.window_long'],
  [/issue now is only/, 'srv.issue_now'],
  [/own alert|author/, 'srv.own_alert'],
  [/say what the review found|comment/, 'srv.comment_required'],
  [/is not connected|is offline/, 'srv.offline'],
  [/bad media|the file is empty|not a WAV|not an MP3|unknown audio|decode/i, 'srv.bad_media'],
  [/larger than the limit/, 'srv.too_big'],
  [/session has (ended|expired)|sign in first/, 'srv.session_ended'],
  [/change your one-time password/, 'srv.must_change'],
  [/do not allow/, 'srv.not_allowed'],
  [/signs today's commands/, 'srv.key_active'],
  [/have not yet confirmed the active key/, 'srv.key_unconfirmed'],
  [/cannot remove your own admin role/, 'srv.own_admin'],
  [/not found/, 'srv.not_found'],
];

// message is the text to show for an error: a Chinese explanation where
// one is known, with the server's words after it for the specifics.
export function message(err) {
  const raw = err && err.message ? err.message : String(err);
  if (currentLanguage() !== 'zh-CN') return raw;
  for (const [re, key] of known) {
    const m = raw.match(re);
    if (m && has(key)) {
      const zh = t(key, {n: m[1]});
      return zh === raw ? zh : `${zh}（${raw}）`;
    }
  }
  if (err && err.status === 409) return t('srv.conflict') + `（${raw}）`;
  if (err && err.status === 403) return t('srv.forbidden') + `（${raw}）`;
  return raw;
}

// list GETs a route that answers an array; some answer null when empty.
export const getList = async (path) => (await api('GET', path)) || [];
