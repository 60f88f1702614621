// Charging sessions (OCPP 1.6 and 2.x, and MQTT devices' sessions, each with its source), a page
// at a time, with the CSV export of every match.
import { url, useDebounced, useResource, useStream } from '../api.js';
import { html, useEffect, useState } from '../lib.js';
import { Badge, Card, DeviceLink, Field, Notice, Pager, PageHead, StationLink, useApp } from '../ui.js';

const LIMIT = 50;

/** OCPP or MQTT: where a session comes from (`source`, absent before MQTT sessions existed). */
export function SourceBadge({ source }) {
  const { t } = useApp();
  const value = source || 'ocpp';
  return html`<${Badge} value=${value} label=${t(`source.${value}`)} tone=${value === 'mqtt' ? 'busy' : 'plain'} />`;
}

/** `forDevice`: an MQTT device's sessions, without the OCPP-only connector, idTag and stop reason. */
export function TransactionTable({ rows, showStation = true, showSource = true, forDevice = false }) {
  const { t, fmt } = useApp();
  return html`<div class="table-wrap"><table class="grid" aria-label=${t('sessions.title')}>
    <thead>
      <tr>
        <th>${t('col.transactionId')}</th>${showSource && html`<th>${t('col.source')}</th>`}${showStation && html`<th>${t('col.stationOrDevice')}</th>`}${!forDevice && html`<th>${t('col.connector')}</th><th>${t('col.idTag')}</th>`}
        <th>${t('col.status')}</th><th>${t('col.startedAt')}</th><th>${t('col.stoppedAt')}</th>
        <th class="num">${t('col.duration')}</th><th class="num">${t('col.energy')}</th>${!forDevice && html`<th>${t('col.stopReason')}</th>`}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (x) => html`<tr key=${`${x.source}:${x.identity}:${x.transactionId}`} data-source=${x.source || 'ocpp'}>
          <td class="mono ellipsis tx" title=${x.transactionId}>${x.transactionId}</td>
          ${showSource && html`<td><${SourceBadge} source=${x.source} /></td>`}
          ${showStation && html`<td>${x.source === 'mqtt' ? html`<${DeviceLink} id=${x.identity} />` : html`<${StationLink} id=${x.identity} />`}</td>`}
          ${!forDevice && html`<td class="num">${x.evseId != null && x.connectorId != null ? `${x.evseId}/${x.connectorId}` : (x.connectorId ?? x.evseId ?? '–')}</td>`}
          ${!forDevice && html`<td class="mono">${x.idTag || '–'}</td>`}
          <td><${Badge} value=${x.status} label=${t(`status.${x.status}`)} /></td>
          <td class="nowrap">${fmt.dateTime(x.startedAt)}</td>
          <td class="nowrap">${x.stoppedAt ? fmt.dateTime(x.stoppedAt) : ''}</td>
          <td class="num nowrap">${fmt.duration(fmt.between(x.startedAt, x.stoppedAt))}</td>
          <td class="num nowrap">${fmt.energy(x.energyWh)}</td>
          ${!forDevice && html`<td>${x.stopReason || ''}</td>`}
        </tr>`,
      )}
    </tbody>
  </table></div>`;
}

export function Sessions({ route }) {
  const { t } = useApp();
  const [draft, setDraft] = useState({ active: '', source: route.query.get('source') || '', identity: route.query.get('identity') || '', idTag: '' });
  const [filter, setFilter] = useState(draft);
  const [offset, setOffset] = useState(0);
  useEffect(() => {
    const timer = setTimeout(() => {
      setOffset(0);
      setFilter(draft);
    }, 350);
    return () => clearTimeout(timer);
  }, [draft.active, draft.source, draft.identity, draft.idTag]);
  const resource = useResource('/api/transactions', { ...filter, limit: LIMIT, offset }, { every: 15000 });
  const reload = useDebounced(resource.reload, 800);
  useStream('/api/events/stream', 'event', (e) => e.kind === 'transaction' && reload());
  const set = (name) => (e) => setDraft({ ...draft, [name]: e.currentTarget.value });
  const csv = url('/api/transactions', { ...filter, format: 'csv' });

  return html`
    <${PageHead} title=${t('sessions.title')}>
      <a class="button" href=${csv} download="transactions.csv">⤓ ${t('sessions.export')}</a>
    </${PageHead}>
    <${Card}>
      <div class="toolbar">
        <${Field} label=${t('sessions.state')}>
          <select value=${draft.active} onChange=${set('active')} aria-label=${t('sessions.state')}>
            <option value="">${t('common.all')}</option>
            <option value="true">${t('status.active')}</option>
            <option value="false">${t('status.completed')}</option>
          </select>
        </${Field}>
        <${Field} label=${t('col.source')}>
          <select value=${draft.source} onChange=${set('source')} aria-label=${t('col.source')}>
            <option value="">${t('common.all')}</option>
            <option value="ocpp">${t('source.ocpp')}</option>
            <option value="mqtt">${t('source.mqtt')}</option>
          </select>
        </${Field}>
        <${Field} label=${t('col.stationOrDevice')}>
          <input type="search" value=${draft.identity} onInput=${set('identity')} placeholder=${t('common.any')} aria-label=${t('col.stationOrDevice')} />
        </${Field}>
        <${Field} label=${t('sessions.idTag')}>
          <input type="search" value=${draft.idTag} onInput=${set('idTag')} placeholder=${t('common.any')} aria-label=${t('sessions.idTag')} />
        </${Field}>
        <span class="spacer"></span>
        <${Pager} offset=${offset} limit=${LIMIT} total=${resource.total} onChange=${setOffset} />
      </div>
      <${TransactionTable} rows=${resource.data || []} />
      <${Notice} error=${resource.error} loading=${resource.loading && !resource.data} empty=${resource.data && !resource.data.length} />
    </${Card}>
  `;
}
