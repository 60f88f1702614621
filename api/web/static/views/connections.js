// Connections: current and past websocket connections, newest first, a page at a time; a station
// that connects or disconnects shows at once (events stream), then the read model's row replaces it.
import { useDebounced, useResource, useStream } from '../api.js';
import { html, useEffect, useState } from '../lib.js';
import { Badge, Card, Field, Notice, Pager, PageHead, StationLink, stationHref, useApp } from '../ui.js';

const LIMIT = 50;
const PROTOCOLS = ['ocpp1.6', 'ocpp2.0.1', 'ocpp2.1'];

/** The row a connection event stands for until the read model has it. */
function rowOf(event) {
  const online = event.name === 'connected';
  return {
    identity: event.identity,
    connectionId: event.body?.connection || `live:${event.identity}`,
    remoteAddress: event.body?.remoteAddress ?? null,
    protocol: event.body?.protocol ?? null,
    gateway: null,
    connectedAt: event.timestamp,
    disconnectedAt: online ? null : event.timestamp,
    closeCode: event.body?.closeCode ?? null,
    reason: event.body?.reason ?? null,
    status: online ? 'online' : 'offline',
    messageCount: null,
    lastMessageAt: null,
    pending: true,
  };
}

function applyEvent(rows, event, filter) {
  if (event.name === 'connected') {
    if (filter.status === 'offline' || (filter.protocol && event.body?.protocol !== filter.protocol)) return rows;
    const row = rowOf(event);
    return [row, ...rows.filter((r) => r.connectionId !== row.connectionId)];
  }
  if (event.name === 'disconnected' || event.name === 'replaced') {
    return rows.map((r) =>
      r.identity === event.identity && r.status === 'online' && (!event.body?.connection || r.connectionId === event.body.connection)
        ? { ...r, status: 'offline', disconnectedAt: event.timestamp, closeCode: event.body?.closeCode ?? null, reason: event.body?.reason ?? event.name }
        : r,
    );
  }
  return rows;
}

const PENDING_MS = 60000; // how long a live row waits for the read model to have its connection

/** The read model's page, with the live rows it does not have yet on top (the projection applies
 * a connection a moment after the event arrives; a reload in between must not hide it). */
function withPending(data, current) {
  const known = new Set(data.map((r) => r.connectionId));
  const since = Date.now() - PENDING_MS;
  const pending = current.filter((r) => r.pending && !known.has(r.connectionId) && Date.parse(r.connectedAt) > since);
  return [...pending, ...data].slice(0, LIMIT);
}

function OpenStation() {
  const { t } = useApp();
  const [id, setId] = useState('');
  const open = (e) => {
    e.preventDefault();
    if (id.trim()) location.hash = stationHref(id.trim());
  };
  return html`<form class="inline" onSubmit=${open}>
    <input type="search" value=${id} onInput=${(e) => setId(e.currentTarget.value)} placeholder=${t('connections.stationId')} aria-label=${t('connections.stationId')} />
    <button type="submit">${t('connections.openStation')}</button>
  </form>`;
}

export function Connections() {
  const { t, fmt } = useApp();
  const [filter, setFilter] = useState({ status: 'all', protocol: '' });
  const [offset, setOffset] = useState(0);
  const resource = useResource('/api/connections', { ...filter, limit: LIMIT, offset }, { every: 15000 });
  const [rows, setRows] = useState([]);
  const reconcile = useDebounced(resource.reload, 700);
  useEffect(() => {
    if (!resource.data) return;
    const next = offset === 0 ? withPending(resource.data, rows) : resource.data;
    setRows(next);
    if (next.some((r) => r.pending)) reconcile(); // ask again until the read model has them
  }, [resource.data]);
  useStream('/api/events/stream', 'event', (event) => {
    if (event.kind !== 'connection') return;
    if (offset === 0) setRows((r) => applyEvent(r, event, filter).slice(0, LIMIT));
    reconcile();
  });
  const change = (name) => (e) => {
    setOffset(0);
    setFilter({ ...filter, [name]: e.currentTarget.value });
  };

  return html`
    <${PageHead} title=${t('connections.title')}><${OpenStation} /></${PageHead}>
    <${Card}>
      <div class="toolbar">
        <${Field} label=${t('col.status')}>
          <select value=${filter.status} onChange=${change('status')} aria-label=${t('col.status')}>
            <option value="all">${t('common.all')}</option>
            <option value="online">${t('status.online')}</option>
            <option value="offline">${t('status.offline')}</option>
          </select>
        </${Field}>
        <${Field} label=${t('col.protocol')}>
          <select value=${filter.protocol} onChange=${change('protocol')} aria-label=${t('col.protocol')}>
            <option value="">${t('common.all')}</option>
            ${PROTOCOLS.map((p) => html`<option value=${p}>${p}</option>`)}
          </select>
        </${Field}>
        <span class="spacer"></span>
        <${Pager} offset=${offset} limit=${LIMIT} total=${resource.total} onChange=${setOffset} />
      </div>
      <div class="table-wrap">
        <table class="grid" aria-label=${t('connections.title')}>
          <thead>
            <tr>
              <th>${t('col.identity')}</th><th>${t('col.status')}</th><th>${t('col.protocol')}</th><th>${t('col.remote')}</th>
              <th>${t('col.connectedAt')}</th><th>${t('col.disconnectedAt')}</th><th>${t('col.closeReason')}</th>
              <th>${t('col.lastMessage')}</th><th class="num">${t('col.messages')}</th>
            </tr>
          </thead>
          <tbody>
            ${rows.map(
              (c) => html`<tr key=${c.connectionId} class=${c.pending ? 'pending' : ''}>
                <td><${StationLink} id=${c.identity} /></td>
                <td><${Badge} value=${c.status} label=${t(`status.${c.status}`)} /></td>
                <td class="mono">${c.protocol || '–'}</td>
                <td class="mono">${c.remoteAddress || '–'}</td>
                <td class="nowrap">${fmt.dateTime(c.connectedAt)}</td>
                <td class="nowrap">${c.disconnectedAt ? fmt.dateTime(c.disconnectedAt) : ''}</td>
                <td class="ellipsis muted">${[c.closeCode, c.reason].filter((x) => x !== null && x !== undefined && x !== '').join(' ')}</td>
                <td class="nowrap" title=${fmt.dateTime(c.lastMessageAt)}>${c.lastMessageAt ? fmt.ago(c.lastMessageAt) : '–'}</td>
                <td class="num">${c.messageCount === null ? '…' : fmt.number(c.messageCount)}</td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>
      <${Notice} error=${resource.error} loading=${resource.loading && !resource.data} empty=${resource.data && !rows.length} />
    </${Card}>
  `;
}
