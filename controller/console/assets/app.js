// Dalaba console: sign-in, the page frame (header, menu, live indicator)
// and the router. Each view is a module whose render(main, app, params)
// draws into <main> and returns a function that stops its live updates.
import {h, mount, coalesce} from './dom.js';
import {t, loadLanguage, savedLanguage, currentLanguage} from './i18n.js';
import {api, getList, setCSRF, message} from './api.js';
import * as live from './live.js';
import {Areas} from './model.js';
import * as signin from './views/signin.js';
import * as overview from './views/overview.js';
import * as areas from './views/areas.js';
import * as compose from './views/compose.js';
import * as speak from './views/speak.js';
import * as programs from './views/programs.js';
import * as approvals from './views/approvals.js';
import * as delivery from './views/delivery.js';
import * as terminals from './views/terminals.js';
import * as terminal from './views/terminal.js';
import * as historyView from './views/history.js';
import * as audit from './views/audit.js';
import * as account from './views/account.js';
import * as admin from './views/admin.js';

const main = document.getElementById('main');
const top = document.getElementById('top');
const nav = document.getElementById('nav');

// The menu: route, label key, and the action it needs (none: everyone).
const menu = [
  ['overview', 'nav.overview', null],
  ['areas', 'nav.areas', null],
  ['compose', 'nav.compose', 'alert.daily'],
  ['speak', 'nav.speak', 'alert.daily'],
  ['approvals', 'nav.approvals', 'alert.approve'],
  ['programs', 'nav.programs', null],
  ['terminals', 'nav.terminals', null],
  ['history', 'nav.history', null],
  ['audit', 'nav.audit', 'audit.view'],
  ['admin', 'nav.admin', 'admin'],
  ['account', 'nav.account', null],
];

const routes = {
  speak: speak,
  overview: overview, areas: areas, compose: compose, approvals: approvals, alerts: delivery, programs: programs,
  terminals: terminals, terminal: terminal, history: historyView, audit: audit, account: account, admin: admin,
};

const app = {
  me: null,
  can(action) { return !!(this.me && this.me.actions.includes(action)); },
  navigate(path) { location.hash = '#/' + path; },
  toast,
  message,
  // load fetches the area tree with its figures and the terminals in scope.
  async load() {
    const [ov, list] = await Promise.all([api('GET', '/api/v1/overview'), getList('/api/v1/terminals')]);
    return {ov, areas: new Areas(ov.areas), terminals: new Map((list || []).map((x) => [x.id, x]))};
  },
  refreshBadges: () => {},
};

let stopView = null;
let generation = 0; // of the route being drawn; an older one drawing late is dropped
let frameSubs = [];
let restartSub = null;

function toast(text, bad) {
  const box = document.getElementById('toast');
  const el = h('div', {class: bad ? 'bad' : ''}, text);
  box.append(el);
  setTimeout(() => el.remove(), bad ? 8000 : 4000);
}

async function boot() {
  await loadLanguage(savedLanguage());
  window.addEventListener('dalaba:signedout', () => {
    if (app.me) signedOut(t('signin.ended'));
  });
  window.addEventListener('hashchange', route);
  try {
    signedIn(await api('GET', '/api/v1/console'));
  } catch (e) {
    showSignIn(e.status === 401 ? '' : message(e));
  }
}

function showSignIn(note) {
  if (stopView) stopView();
  stopView = null;
  top.classList.add('hidden');
  nav.classList.add('hidden');
  document.title = t('title.signin');
  signin.render(main, {
    note,
    done: async (csrf) => {
      setCSRF(csrf);
      signedIn(await api('GET', '/api/v1/console'));
    },
    switchLanguage,
  });
}

function signedIn(me) {
  app.me = me;
  setCSRF(me.csrf_token);
  drawFrame();
  live.start();
  if (!restartSub) {
    // A stream the server closed: a 401 signs out (api() says so), anything
    // else is retried.
    restartSub = live.on('closed', () => setTimeout(async () => {
      if (!app.me) return;
      try {
        await api('GET', '/api/v1/console');
        live.start();
      } catch (e) {
        if (e.status !== 401) live.start();
      }
    }, 3000));
  }
  if (!location.hash || location.hash === '#/' || location.hash.startsWith('#/signin')) history.replaceState(null, '', '#/overview');
  route();
}

function signedOut(note) {
  frameSubs.forEach((u) => u());
  frameSubs = [];
  live.stop();
  app.me = null;
  setCSRF('');
  showSignIn(note);
}

async function signOut() {
  try { await api('POST', '/api/v1/signout'); } catch (e) { /* the session may already be gone */ }
  signedOut(t('signin.signed_out'));
}

async function switchLanguage() {
  await loadLanguage(currentLanguage() === 'zh-CN' ? 'en' : 'zh-CN');
  if (app.me) {
    drawFrame();
    route();
  } else {
    showSignIn();
  }
}

function drawFrame() {
  const me = app.me;
  frameSubs.forEach((u) => u());
  frameSubs = [];
  const liveEl = h('span', {class: 'live ' + live.current(), role: 'status', id: 'live'}, t('live.' + live.current()));
  frameSubs.push(live.on('state', (s) => {
    liveEl.className = 'live ' + s;
    liveEl.textContent = t('live.' + s);
  }));
  mount(top,
    h('div', {class: 'brand'}, t('app.name'), h('small', {}, me.county && me.county.name ? me.county.name : '')),
    liveEl,
    h('span', {class: 'who'}, me.user.display || me.user.name,
      h('span', {class: 'roles'}, ' · ', me.user.roles.map((r) => t('role.' + r)).join('、'))),
    h('button', {type: 'button', onclick: switchLanguage, lang: currentLanguage() === 'zh-CN' ? 'en' : 'zh-CN', id: 'lang'}, t('lang.other')),
    h('button', {type: 'button', onclick: signOut, id: 'signout'}, t('nav.signout')));
  top.classList.remove('hidden');
  const items = menu.filter(([, , need]) => !need || app.can(need) || (need === 'alert.daily' && app.can('alert.emergency')) ||
    (need === 'admin' && ['users.manage', 'settings.manage', 'keys.manage'].some((a) => app.can(a))));
  mount(nav, items.map(([path, key]) => h('a', {href: '#/' + path, 'data-route': path}, t(key),
    path === 'approvals' ? h('span', {class: 'count hidden', id: 'approvals-count'}) : null)));
  nav.classList.remove('hidden');
  if (app.can('alert.approve')) {
    const refresh = coalesce(async () => {
      try {
        const list = await getList('/api/v1/approvals');
        const el = document.getElementById('approvals-count');
        if (el) {
          el.textContent = String(list.length);
          el.classList.toggle('hidden', list.length === 0);
        }
      } catch (e) { /* shown by the page */ }
    }, 300);
    app.refreshBadges = refresh;
    frameSubs.push(live.on('alert', refresh), live.on('resync', refresh));
    refresh();
  }
}

async function route() {
  if (!app.me) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  let name = parts[0] || 'overview';
  if (name === 'terminals' && parts[1]) name = 'terminal';
  const view = routes[name];
  if (stopView) stopView();
  stopView = null;
  for (const a of nav.querySelectorAll('a')) {
    const here = a.dataset.route === parts[0] || (parts[0] === 'alerts' && a.dataset.route === 'history');
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!view) {
    mount(main, h('p', {}, t('err.no_page')));
    return;
  }
  document.title = t('nav.' + (name === 'alerts' ? 'delivery' : name === 'terminal' ? 'terminals' : name)) + ' · ' + t('app.name');
  mount(main, h('p', {class: 'muted'}, t('loading')));
  const gen = ++generation;
  const subs = [];
  const ctx = Object.assign(Object.create(app), {
    on(kind, fn) { if (gen === generation) subs.push(live.on(kind, fn)); },
    current: () => gen === generation,
  });
  stopView = () => subs.forEach((u) => u());
  const box = h('div', {class: 'view view-' + name});
  try {
    await view.render(box, ctx, parts.slice(1));
  } catch (e) {
    mount(box, h('div', {class: 'errors', role: 'alert'}, message(e)));
  }
  if (gen !== generation) return;
  mount(main, box);
  if (document.activeElement === document.body || !main.contains(document.activeElement)) main.focus({preventScroll: true});
}

boot();
