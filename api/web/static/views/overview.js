// Overview: tiles from /api/overview, kept current by the telemetry stream; throughput chart;
// recent activity (events stream) and the latest frames (messages stream).
import { get, useResource, useStreamBatches } from '../api.js';
import { ThroughputChart } from '../charts.js';
import { html, useEffect, useMemo, useState } from '../lib.js';
import { liveStore } from '../store.js';
import { Badge, Card, Notice, PageHead, StationLink, useApp } from '../ui.js';
import { MessageType, MessageDirection } from './messages.js';

const LATEST = 15;

function Tile({ label, value, sub, tone = '' }) {
  return html`<div class=${`tile ${tone}`}>
    <span class="tile-label">${label}</span>
    <b class="tile-value">${value}</b>
    ${sub && html`<span class="tile-sub">${sub}</span>`}
  </div>`;
}

function useLiveStore() {
  const [, setTick] = useState(0);
  useEffect(() => liveStore.watch(() => setTick((n) => n + 1)), []);
  return liveStore;
}

export function eventLabel(t, event) {
  const key = `event.${event.kind}.${event.name}`;
  const text = t(key);
  return text === key ? `${t(`event.kind.${event.kind}`)} ${event.name}` : text;
}

function eventTone(event) {
  if (event.kind === 'connection') return { connected: 'ok', disconnected: 'off', replaced: 'warn', rejected: 'bad' }[event.name] || 'plain';
  if (event.kind === 'command') return { answered: 'ok', failed: 'bad', timed_out: 'warn' }[event.name] || 'busy';
  return 'plain';
}

function eventDetail(event) {
  const b = event.body || {};
  if (event.kind === 'command') return [b.action, b.outcome && b.outcome !== 'answered' ? b.outcome : null, b.errorCode].filter(Boolean).join(' · ');
  if (event.kind === 'connection') return [b.protocol, b.remoteAddress, b.reason].filter(Boolean).join(' · ');
  if (event.kind === 'transaction') return [b.event, b.transactionId].filter((x) => x !== undefined && x !== null).join(' · ');
  return '';
}

const IN_BETWEEN = new Set(['requested', 'sent']); // a command shows once, when it ended

export function Activity({ events, limit = 30 }) {
  const { t, fmt } = useApp();
  events = events.filter((e) => !(e.kind === 'command' && IN_BETWEEN.has(e.name)));
  if (!events.length) return html`<p class="notice">${t('common.none')}</p>`;
  return html`<ul class="activity">
    ${events.slice(0, limit).map(
      (e) => html`<li>
        <time>${fmt.clock(e.timestamp)}</time>
        <${StationLink} id=${e.identity} />
        <${Badge} value=${e.name} label=${eventLabel(t, e)} tone=${eventTone(e)} />
        <span class="muted ellipsis">${eventDetail(e)}</span>
      </li>`,
    )}
  </ul>`;
}

/** The latest connections and commands as the events the stream would have shown. */
async function recentEvents() {
  const [connections, commands] = await Promise.all([
    get('/api/connections', { limit: 15 }),
    get('/api/commands', { limit: 15 }).catch(() => ({ data: [] })),
  ]);
  const events = [];
  for (const c of connections.data) {
    if (c.disconnectedAt) events.push({ kind: 'connection', name: 'disconnected', identity: c.identity, timestamp: c.disconnectedAt, body: { reason: c.reason } });
    events.push({ kind: 'connection', name: 'connected', identity: c.identity, timestamp: c.connectedAt, body: { protocol: c.protocol, remoteAddress: c.remoteAddress } });
  }
  for (const c of commands.data) {
    const at = c.finishedAt || c.sentAt || c.requestedAt;
    if (at) events.push({ kind: 'command', name: c.status, identity: c.identity, timestamp: at, body: { action: c.action, outcome: c.outcome, errorCode: c.errorCode } });
  }
  return events.sort((a, b) => new Date(b.timestamp) - new Date(a.timestamp));
}

export function Overview() {
  const { t, fmt } = useApp();
  const overview = useResource('/api/overview', null, { every: 10000 });
  const store = useLiveStore();
  useEffect(() => {
    if (!liveStore.events.length) recentEvents().then((events) => liveStore.seedEvents(events)).catch(() => {});
  }, []);
  const [latest, setLatest] = useState([]);
  const initial = overview.data?.recentMessages;
  useEffect(() => {
    if (initial && !latest.length) setLatest(initial.slice(0, LATEST));
  }, [initial]);
  useStreamBatches('/api/messages/stream', 'message', (batch) =>
    setLatest((rows) => {
      const fresh = batch.slice(-LATEST).reverse();
      const ids = new Set(fresh.map((m) => m.id));
      return [...fresh, ...rows.filter((r) => !ids.has(r.id))].slice(0, LATEST);
    }),
  );

  const now = store.telemetry.at(-1);
  const o = overview.data;
  const labels = useMemo(() => ({ rate: t('chart.rate'), latency: t('chart.latency'), time: t('common.time') }), [t]);
  if (!o) return html`<${PageHead} title=${t('overview.title')} /><${Notice} error=${overview.error} loading=${!overview.error} />`;

  const connected = now ? now.connectionCount : o.connectedClients;
  const rate = now ? now.messagesPerSecond : o.messagesPerSecond;
  const latency = now ? now.avgLatencyMs : o.avgLatencyMs;
  const errorRate = now ? now.errorRate : o.errorRate;
  return html`
    <${PageHead} title=${t('overview.title')} />
    <div class="tiles">
      <${Tile} label=${t('tile.connected')} value=${fmt.number(connected)} sub=${t('tile.of', { n: fmt.number(o.totalConnections) })} tone="accent" />
      <${Tile} label=${t('tile.rate')} value=${fmt.number(rate, 1)} sub=${now ? t('tile.peak', { n: fmt.number(now.peakConnections) }) : null} />
      <${Tile} label=${t('tile.latency')} value=${fmt.ms(latency)} />
      <${Tile} label=${t('tile.errorRate')} value=${fmt.percent(errorRate)} tone=${errorRate > 0.05 ? 'bad' : ''} />
      <${Tile} label=${t('tile.total')} value=${fmt.number(now ? now.totalMessages : o.totalMessages)} />
      <${Tile} label=${t('tile.errors')} value=${fmt.number(o.errorCount)} tone=${o.errorCount ? 'warn' : ''} />
      <${Tile} label=${t('tile.security')} value=${fmt.number(o.securityEventCount)} tone=${o.securityEventCount ? 'warn' : ''} />
      <${Tile} label=${t('tile.uptime')} value=${fmt.duration(now ? now.uptimeSeconds : o.uptimeSeconds)} />
    </div>
    <${Card} title=${t('overview.throughput')}>
      ${store.telemetry.length > 1
        ? html`<${ThroughputChart} points=${store.telemetry} labels=${labels} />`
        : html`<p class="notice chart-wait">${t('overview.waiting')}</p>`}
    </${Card}>
    <div class="columns">
      <${Card} title=${t('overview.activity')}>
        <${Activity} events=${store.events} />
      </${Card}>
      <${Card} title=${t('overview.recent')} actions=${html`<a href="#/messages">${t('overview.openLog')} ›</a>`}>
        <table class="grid compact">
          <tbody>
            ${latest.map(
              (m) => html`<tr key=${m.id}>
                <td class="mono nowrap">${fmt.clock(m.timestamp)}</td>
                <td><${StationLink} id=${m.identity} /></td>
                <td><${MessageDirection} value=${m.direction} /></td>
                <td><${MessageType} value=${m.type} /></td>
                <td class="ellipsis">${m.method}</td>
              </tr>`,
            )}
          </tbody>
        </table>
        ${!latest.length && html`<p class="notice">${t('common.none')}</p>`}
      </${Card}>
    </div>
  `;
}
