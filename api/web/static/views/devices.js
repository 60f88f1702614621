// MQTT devices (evcc, go-e, OpenEVSE, esp32-evse, Shelly, Tasmota, …): each device's latest state,
// a page at a time, kept current by the readings stream; and the MQTT gateways' status line.
import { url, useDebounced, useResource, useStreamBatches } from '../api.js';
import { html, useEffect, useRef, useState } from '../lib.js';
import { Badge, Card, Field, Notice, Pager, PageHead, deviceHref, useApp } from '../ui.js';

const LIMIT = 50;
/** The built-in families' sources (gateways/mqtt/families.py); a mapping file may add others. */
export const SOURCES = ['evcc', 'goe', 'openevse', 'openwb', 'esp32evse', 'shelly', 'tasmota'];

const listOrNull = (value) => (Array.isArray(value) ? value : null);
const orNull = (value) => (value === undefined ? null : value);

/**
 * A `reading` event of /api/devices/stream in the shape of a GET /api/devices row. Two
 * "connected"s (docs/adr/0010-mqtt-gateway.md): the reading's `connected` is a vehicle plugged in
 * (`vehicleConnected`); the device's own `connected` is its presence, `online === true`. A reading
 * is the device's whole state: a field it does not carry is unset (null), never the old value.
 */
export function deviceOfReading(r, previous) {
  return {
    id: r.id,
    source: r.source,
    device: r.device,
    kind: orNull(r.kind),
    firstSeenAt: previous?.firstSeenAt ?? r.ts,
    updatedAt: r.ts,
    lastSeenAt: orNull(r.lastSeenAt),
    connected: r.online === true,
    vehicleConnected: orNull(r.connected),
    online: orNull(r.online),
    state: orNull(r.state),
    stateRaw: orNull(r.stateRaw),
    charging: orNull(r.charging),
    enabled: orNull(r.enabled),
    powerW: orNull(r.powerW),
    energyWh: orNull(r.energyWh),
    sessionEnergyWh: orNull(r.sessionEnergyWh),
    currentsA: listOrNull(r.currentsA),
    voltagesV: listOrNull(r.voltagesV),
    socPct: orNull(r.socPct),
    offeredCurrentA: orNull(r.offeredCurrentA),
    phases: orNull(r.phases),
    temperatureC: orNull(r.temperatureC),
    errors: listOrNull(r.errors),
    mode: orNull(r.mode),
    title: orNull(r.title),
    extra: r.extra && typeof r.extra === 'object' ? r.extra : null,
    flags: listOrNull(r.flags),
    retained: Boolean(r.retained),
  };
}

const time = (iso) => {
  const ms = Date.parse(iso || '');
  return Number.isNaN(ms) ? 0 : ms;
};

/** The newer of two states of one device (the read model's row may lag behind the stream). */
export function newer(a, b) {
  if (!a) return b;
  if (!b) return a;
  return time(b.updatedAt) >= time(a.updatedAt) ? { ...a, ...b, firstSeenAt: a.firstSeenAt ?? b.firstSeenAt } : a;
}

function matches(row, filter) {
  if (filter.status === 'connected' && !row.connected) return false;
  if (filter.status === 'disconnected' && row.connected) return false;
  return !filter.source || row.source === filter.source;
}

/** Apply one frame's readings to the rows in view: update known ids, add new ones on page 1. */
function applyReadings(current, readings, filter, firstPage) {
  const rows = new Map(current.map((r) => [r.id, r]));
  let added = false;
  for (const reading of readings) {
    if (!reading || typeof reading.id !== 'string') continue;
    const before = rows.get(reading.id);
    const row = deviceOfReading(reading, before);
    if (!matches(row, filter)) {
      rows.delete(reading.id); // e.g. it went offline while only connected devices are listed
    } else if (before) {
      rows.set(reading.id, newer(before, row));
    } else if (firstPage) {
      rows.set(reading.id, { ...row, pending: true });
      added = true;
    }
  }
  const out = [...rows.values()];
  if (added) out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out;
}

/**
 * A new stream starts at the newest reading, so one stored between a GET and the stream's start
 * would be missed until the next poll: read again once the stream is open (and after it reopens).
 */
export function useReloadWhenOpen(state, reload) {
  const open = state === 'open';
  useEffect(() => {
    if (open) reload();
  }, [open]);
}

/** Re-render every `ms` (for "3 min ago" texts). */
export function useTick(ms) {
  const [, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => document.visibilityState === 'visible' && setTick((n) => n + 1), ms);
    return () => clearInterval(timer);
  }, [ms]);
}

/** The device's own presence: online, offline, or not known (no LWT and no live message yet). */
export function Presence({ device }) {
  const { t } = useApp();
  if (device.online === true) return html`<${Badge} value="online" label=${t('status.online')} />`;
  if (device.online === false) return html`<${Badge} value="offline" label=${t('status.offline')} />`;
  return html`<${Badge} value="unknown" label=${t('devices.unknownPresence')} />`;
}

/** The vehicle: charging, plugged in, not plugged in, or not reported. */
export function Vehicle({ device }) {
  const { t } = useApp();
  if (device.charging === true) return html`<${Badge} value="charging" label=${t('devices.charging')} />`;
  if (device.vehicleConnected === true) return html`<${Badge} value="plugged" label=${t('devices.plugged')} tone="ok" />`;
  if (device.vehicleConnected === false) return html`<span class="muted">${t('devices.unplugged')}</span>`;
  return html`<span class="muted">–</span>`;
}

/** One line per MQTT gateway: connected to which broker, messages/s, devices, unmatched topics. */
export function MqttStatus() {
  const { t, fmt } = useApp();
  const status = useResource('/api/mqtt/status', null, { every: 5000 });
  const s = status.data;
  if (!s) {
    return html`<div class="mqtt-status" aria-label=${t('mqtt.title')}>
      <b>${t('mqtt.title')}</b>
      ${status.error ? html`<span class="bad-text">${t('common.error', { error: status.error.message })}</span>` : html`<span class="muted">${t('common.loading')}</span>`}
    </div>`;
  }
  return html`<div class="mqtt-status" role="status" aria-label=${t('mqtt.title')}>
    <b>${t('mqtt.title')}</b>
    ${!s.gateways.length && !s.unreachable.length && html`<span class="muted">${t('mqtt.none')}</span>`}
    ${s.gateways.map(
      (g) => html`<span class="mqtt-gateway" key=${g.gateway}>
        <${Badge} value=${g.connected ? 'online' : 'offline'} label=${t(g.connected ? 'mqtt.connected' : 'mqtt.disconnected')} />
        <span class="mono" title=${t('mqtt.gateway')}>${g.gateway}</span>
        <span class="muted">→</span>
        <span class="mono" title=${t('mqtt.since', { t: fmt.dateTime(g.since) })}>${g.broker}</span>
        <span class="mqtt-rate">${t('mqtt.rate', { n: fmt.number(g.messagesPerSecond, 1) })}</span>
        <span>${t('mqtt.devices', { n: fmt.number(g.devices) })}</span>
        ${g.unmatchedTopicCount > 0 &&
        html`<details class="unmatched">
          <summary class="warn-text">${t('mqtt.unmatched', { n: fmt.number(g.unmatchedTopicCount) })}</summary>
          <ul class="mono">${g.unmatchedTopics.map((topic) => html`<li key=${topic}>${topic}</li>`)}</ul>
        </details>`}
      </span>`,
    )}
    ${s.unreachable.length > 0 &&
    html`<span class="warn-text">${t('mqtt.unreachable', { ids: s.unreachable.map((p) => p.gateway).join(', ') })}</span>`}
  </div>`;
}

export function Devices({ route }) {
  const { t, fmt } = useApp();
  const [draft, setDraft] = useState({ status: route.query.get('status') || 'all', source: route.query.get('source') || '' });
  const [filter, setFilter] = useState(draft);
  const [offset, setOffset] = useState(0);
  useEffect(() => {
    const timer = setTimeout(() => {
      setOffset(0);
      setFilter(draft);
    }, 350);
    return () => clearTimeout(timer);
  }, [draft.status, draft.source]);
  const resource = useResource('/api/devices', { ...filter, limit: LIMIT, offset }, { every: 15000 });
  const [rows, setRows] = useState([]);
  const changedCount = useRef(false); // the stream added or removed a row: the total changed
  useEffect(() => {
    if (!resource.data) return;
    setRows((current) => {
      const live = new Map(current.map((r) => [r.id, r]));
      const listed = resource.data.map((r) => newer(r, live.get(r.id)));
      const known = new Set(listed.map((r) => r.id));
      const pending = offset === 0 ? current.filter((r) => r.pending && !known.has(r.id) && matches(r, filter)) : [];
      return pending.length ? [...listed, ...pending].sort((a, b) => (a.id < b.id ? -1 : 1)) : listed;
    });
  }, [resource.data]);
  const reconcile = useDebounced(resource.reload, 1500);
  const stream = useStreamBatches(url('/api/devices/stream', { source: filter.source }), 'reading', (batch) => {
    setRows((current) => {
      const next = applyReadings(current, batch, filter, offset === 0);
      if (next.length !== current.length) changedCount.current = true;
      return next;
    });
  });
  useReloadWhenOpen(stream, resource.reload);
  useEffect(() => {
    if (!changedCount.current) return;
    changedCount.current = false;
    reconcile();
  }, [rows]);
  useTick(10000);
  const set = (name) => (e) => setDraft({ ...draft, [name]: e.currentTarget.value });
  const sources = [...new Set([...SOURCES, ...rows.map((r) => r.source)])].sort();

  return html`
    <${PageHead} title=${t('devices.title')} />
    <${MqttStatus} />
    <${Card}>
      <div class="toolbar">
        <${Field} label=${t('col.status')}>
          <select value=${draft.status} onChange=${set('status')} aria-label=${t('col.status')}>
            <option value="all">${t('common.all')}</option>
            <option value="connected">${t('devices.filter.connected')}</option>
            <option value="disconnected">${t('devices.filter.disconnected')}</option>
          </select>
        </${Field}>
        <${Field} label=${t('col.source')}>
          <input type="search" list="device-sources" value=${draft.source} onInput=${set('source')} placeholder=${t('common.any')} aria-label=${t('col.source')} />
          <datalist id="device-sources">${sources.map((s) => html`<option value=${s} />`)}</datalist>
        </${Field}>
        <span class="spacer"></span>
        <${Pager} offset=${offset} limit=${LIMIT} total=${resource.total} onChange=${setOffset} />
      </div>
      <div class="table-wrap">
        <table class="grid devices" aria-label=${t('devices.title')}>
          <thead>
            <tr>
              <th>${t('col.device')}</th><th>${t('col.source')}</th><th>${t('col.kind')}</th><th>${t('col.status')}</th>
              <th>${t('col.vehicle')}</th><th class="num">${t('col.power')}</th><th class="num">${t('col.sessionEnergy')}</th>
              <th class="num">${t('col.soc')}</th><th>${t('col.lastSeen')}</th>
            </tr>
          </thead>
          <tbody>
            ${rows.map(
              (d) => html`<tr key=${d.id} class=${`clickable ${d.pending ? 'pending' : ''}`} data-device=${d.id} onClick=${(e) => {
                if (!e.target.closest('a')) location.hash = deviceHref(d.id);
              }}>
                <td class="device-name">
                  <a href=${deviceHref(d.id)}>${d.title || d.device}</a>
                  <span class="mono muted small">${d.id}</span>
                  ${d.errors?.length > 0 && html` <${Badge} value="error" label=${d.errors.join(', ')} tone="bad" />`}
                </td>
                <td class="mono">${d.source}</td>
                <td>${d.kind ? t(`kind.${d.kind}`) : '–'}</td>
                <td><${Presence} device=${d} /></td>
                <td><${Vehicle} device=${d} /></td>
                <td class="num nowrap power">${fmt.power(d.powerW)}</td>
                <td class="num nowrap">${fmt.energy(d.sessionEnergyWh)}</td>
                <td class="num nowrap">${fmt.unit(d.socPct, '%')}</td>
                <td class="nowrap" title=${fmt.dateTime(d.lastSeenAt || d.updatedAt)}>
                  ${d.lastSeenAt ? fmt.ago(d.lastSeenAt) : html`<span class="muted">${t('devices.replayed')}</span>`}
                </td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>
      <${Notice} error=${resource.error} loading=${resource.loading && !resource.data} empty=${resource.data && !rows.length} />
    </${Card}>
  `;
}
