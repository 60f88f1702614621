// The evbus dashboard: login, the frame around the views, hash routing, language.
import { get, onUnauthorized, post, useLiveState, useStream } from './api.js';
import { formatter } from './format.js';
import { initialLanguage, LANGUAGES, storeLanguage, translator } from './i18n.js';
import { html, render, useEffect, useMemo, useState } from './lib.js';
import { liveStore } from './store.js';
import { App, useApp } from './ui.js';
import { Connections } from './views/connections.js';
import { Device } from './views/device.js';
import { Devices } from './views/devices.js';
import { Liveness } from './views/liveness.js';
import { Login } from './views/login.js';
import { Messages } from './views/messages.js';
import { Metrics } from './views/metrics.js';
import { Overview } from './views/overview.js';
import { Security } from './views/security.js';
import { Sessions } from './views/sessions.js';
import { Station } from './views/station.js';
import { Streams } from './views/streams.js';

const NAV = [
  ['overview', '#/', 'nav.overview'],
  ['connections', '#/connections', 'nav.connections'],
  ['devices', '#/devices', 'nav.devices'],
  ['messages', '#/messages', 'nav.messages'],
  ['sessions', '#/sessions', 'nav.sessions'],
  ['metrics', '#/metrics', 'nav.metrics'],
  ['liveness', '#/liveness', 'nav.liveness'],
  ['security', '#/security', 'nav.security'],
  ['streams', '#/streams', 'nav.streams'],
];

const VIEWS = {
  overview: Overview,
  connections: Connections,
  devices: Devices,
  messages: Messages,
  sessions: Sessions,
  metrics: Metrics,
  liveness: Liveness,
  security: Security,
  streams: Streams,
  station: Station,
  device: Device,
};

/** A page of one thing and the navigation entry it belongs to. */
const PARENT = { station: 'connections', device: 'devices' };

/** '#/stations/CP%2E1?x=1' -> {name: 'station', id: 'CP.1', query: URLSearchParams}; '#/devices/{id}' likewise. */
function parseRoute(hash) {
  const [path, search] = hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean);
  const query = new URLSearchParams(search || '');
  if (parts[0] === 'stations' && parts[1]) return { name: 'station', id: decodeURIComponent(parts[1]), query };
  if (parts[0] === 'devices' && parts[1]) return { name: 'device', id: decodeURIComponent(parts[1]), query };
  const name = parts[0] || 'overview';
  return { name: VIEWS[name] && !PARENT[name] ? name : 'overview', query };
}

function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return useMemo(() => parseRoute(hash), [hash]);
}

function LanguageSwitch() {
  const { t, lang, setLang } = useApp();
  return html`<div class="segmented" role="group" aria-label=${t('header.language')}>
    ${LANGUAGES.map(
      (l) => html`<button
        type="button"
        lang=${l.code}
        title=${l.name}
        aria-label=${l.name}
        aria-pressed=${lang === l.code}
        class=${lang === l.code ? 'on' : ''}
        onClick=${() => setLang(l.code)}
      >
        ${l.label}
      </button>`,
    )}
  </div>`;
}

function LiveIndicator() {
  const { t } = useApp();
  const state = useLiveState();
  const text = { open: t('live.open'), connecting: t('live.connecting'), down: t('live.down'), overflow: t('live.overflow') };
  return html`<span class=${`live ${state}`} title=${text[state]}><i></i>${state === 'open' ? text.open : text[state]}</span>`;
}

function HeaderStats() {
  const { t, fmt } = useApp();
  const [telemetry, setTelemetry] = useState(liveStore.telemetry.at(-1) || null);
  useEffect(() => liveStore.watch(() => setTelemetry(liveStore.telemetry.at(-1) || null)), []);
  if (!telemetry) return null;
  return html`<span class="header-stats">
    <span>${t('header.online', { n: fmt.number(telemetry.connectionCount) })}</span>
    <span>${t('header.rate', { n: fmt.number(telemetry.messagesPerSecond, 1) })}</span>
  </span>`;
}

/** The streams every view profits from: telemetry (header, overview chart) and events (activity). */
function GlobalFeeds() {
  useStream('/api/telemetry/stream', 'telemetry', (data) => liveStore.addTelemetry(data));
  useStream('/api/events/stream', 'event', (data) => liveStore.addEvent(data));
  return null;
}

function Shell({ route }) {
  const { t, user, logout } = useApp();
  const View = VIEWS[route.name];
  const active = PARENT[route.name] || route.name;
  useEffect(() => {
    document.title = `${route.id ? `${route.id} · ` : ''}${t(`nav.${active}`)} · evbus`;
  }, [route.name, route.id, active, t]);
  return html`<div class="shell">
    <${GlobalFeeds} />
    <nav class="sidebar" aria-label="evbus">
      <a class="brand" href="#/">
        <img src="/static/favicon.svg" alt="" width="26" height="26" />
        <span><b>${t('app.title')}</b><small>${t('app.subtitle')}</small></span>
      </a>
      <ul>
        ${NAV.map(
          ([name, href, key]) => html`<li>
            <a href=${href} class=${active === name ? 'active' : ''} aria-current=${active === name ? 'page' : null}>${t(key)}</a>
          </li>`,
        )}
      </ul>
      <a class="api-link" href="/schema" target="_blank" rel="noopener">${t('nav.api')} ↗</a>
    </nav>
    <div class="main">
      <header class="topbar">
        <${LiveIndicator} />
        <${HeaderStats} />
        <span class="spacer"></span>
        <${LanguageSwitch} />
        <span class="user">${user}</span>
        <button type="button" class="ghost" onClick=${logout}>${t('header.signOut')}</button>
      </header>
      <main class="content">
        <${View} key=${route.id ? `${route.name}:${route.id}` : route.name} route=${route} />
      </main>
    </div>
  </div>`;
}

function Root() {
  const [lang, setLangState] = useState(initialLanguage);
  const [auth, setAuth] = useState({ state: 'checking', user: null, expired: false });
  const route = useRoute();

  useEffect(() => {
    storeLanguage(lang);
  }, [lang]);

  useEffect(() => {
    onUnauthorized(() => setAuth((a) => (a.state === 'in' ? { state: 'out', user: null, expired: true } : a)));
    get('/api/auth/session')
      .then(async ({ data }) => {
        if (data.authenticated) return setAuth({ state: 'in', user: data.user.name });
        try {
          await get('/api/telemetry'); // EVBUS_API_OPEN: the API answers without a session
          return setAuth({ state: 'in', user: 'open', open: true });
        } catch {
          return setAuth({ state: 'out', user: null });
        }
      })
      .catch(() => setAuth({ state: 'out', user: null }));
  }, []);

  const context = useMemo(
    () => ({
      lang,
      t: translator(lang),
      fmt: formatter(lang),
      setLang: setLangState,
      user: auth.user,
      signedIn: (user) => {
        liveStore.reset();
        setAuth({ state: 'in', user });
      },
      logout: async () => {
        try {
          await post('/api/auth/logout');
        } finally {
          liveStore.reset();
          setAuth({ state: 'out', user: null });
        }
      },
    }),
    [lang, auth.user],
  );

  let body = null;
  if (auth.state === 'in') body = html`<${Shell} route=${route} />`;
  else if (auth.state === 'out') body = html`<${Login} expired=${auth.expired} />`;
  return html`<${App.Provider} value=${context}>${body}</${App.Provider}>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the placeholder shown while the modules load
render(html`<${Root} />`, root);
