// One station: what it told us at boot, its connectors, the common commands with the station's
// answers, its sessions and its latest frames (live).
import { post, useDebounced, useResource, useStream } from '../api.js';
import { html, useEffect, useRef, useState } from '../lib.js';
import { Badge, Card, Json, Notice, Pager, PageHead, useApp } from '../ui.js';
import { MessageLog } from './messages.js';
import { TransactionTable } from './sessions.js';

const TRIGGERS = ['BootNotification', 'Heartbeat', 'StatusNotification', 'MeterValues', 'FirmwareStatusNotification', 'DiagnosticsStatusNotification'];
const ANSWERS_KEPT = 8;
const TX_LIMIT = 10;

function Facts({ station }) {
  const { t, fmt } = useApp();
  const s = station;
  const c = s.connection;
  const row = (label, value) => html`<div class="fact"><dt>${label}</dt><dd>${value}</dd></div>`;
  return html`<dl class="facts-grid">
    ${row(t('common.status'), html`<${Badge} value=${s.online ? 'online' : 'offline'} label=${t(s.online ? 'status.online' : 'status.offline')} />`)}
    ${row(t('common.protocol'), html`<span class="mono">${s.protocol || '–'}</span>`)}
    ${row(t('station.vendor'), [s.vendor, s.model].filter(Boolean).join(' / ') || '–')}
    ${row(t('station.serial'), html`<span class="mono">${s.serialNumber || '–'}</span>`)}
    ${row(t('station.firmware'), html`<span class="mono">${s.firmwareVersion || '–'}</span>`)}
    ${row(t('station.lastBoot'), s.bootAt ? html`${fmt.dateTime(s.bootAt)} <${Badge} value=${s.bootStatus} />` : '–')}
    ${row(
      t('station.heartbeat'),
      s.heartbeatInterval ? t('station.heartbeatEvery', { n: fmt.number(s.heartbeatInterval), t: s.lastHeartbeatAt ? fmt.ago(s.lastHeartbeatAt) : '–' }) : '–',
    )}
    ${row(
      t('station.connection'),
      c ? html`<span class="mono">${c.remoteAddress || '–'}</span> · ${c.status === 'online' ? t('station.since', { t: fmt.dateTime(c.connectedAt) }) : fmt.dateTime(c.disconnectedAt)}` : '–',
    )}
    ${row(t('station.firstSeen'), fmt.dateTime(s.firstSeenAt))}
    ${s.firmwareStatus && row(t('station.firmwareStatus'), html`<${Badge} value=${s.firmwareStatus} /> ${fmt.ago(s.firmwareStatusAt)}`)}
    ${s.diagnosticsStatus && row(t('station.diagnosticsStatus'), html`<${Badge} value=${s.diagnosticsStatus} /> ${fmt.ago(s.diagnosticsStatusAt)}`)}
  </dl>`;
}

function Connectors({ connectors }) {
  const { t, fmt } = useApp();
  if (!connectors.length) return html`<p class="notice">${t('station.noConnectors')}</p>`;
  const evse = connectors.some((c) => c.evseId !== null && c.evseId !== undefined);
  return html`<table class="grid">
    <thead><tr>${evse && html`<th>${t('col.evse')}</th>`}<th>${t('col.connector')}</th><th>${t('col.status')}</th><th>${t('col.errorCode')}</th><th>${t('col.info')}</th><th>${t('col.updatedAt')}</th></tr></thead>
    <tbody>
      ${connectors.map(
        (c) => html`<tr key=${`${c.evseId}:${c.connectorId}`}>
          ${evse && html`<td class="num">${c.evseId ?? '–'}</td>`}
          <td class="num">${c.connectorId}</td>
          <td><${Badge} value=${c.status} /></td>
          <td>${c.errorCode && c.errorCode !== 'NoError' ? html`<${Badge} value=${c.errorCode} tone="bad" />` : html`<span class="muted">${c.errorCode || '–'}</span>`}</td>
          <td class="ellipsis">${[c.info, c.vendorErrorCode].filter(Boolean).join(' · ')}</td>
          <td class="nowrap" title=${fmt.dateTime(c.updatedAt)}>${fmt.ago(c.updatedAt)}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

/** A button that asks for a second click (within 4 s) before it acts. */
function ConfirmButton({ onConfirm, children, disabled, className = '' }) {
  const { t } = useApp();
  const [armed, setArmed] = useState(false);
  useEffect(() => {
    if (!armed) return undefined;
    const timer = setTimeout(() => setArmed(false), 4000);
    return () => clearTimeout(timer);
  }, [armed]);
  const click = () => {
    if (armed) {
      setArmed(false);
      onConfirm();
    } else setArmed(true);
  };
  return html`<button type="button" class=${`${className} ${armed ? 'danger' : ''}`} disabled=${disabled} onClick=${click}>
    ${armed ? t('cmd.confirm') : children}
  </button>`;
}

function Answer({ entry, open }) {
  const { t, fmt } = useApp();
  const { label, at, result, error, running } = entry;
  let summary;
  if (running) summary = html`<span class="muted">${t('cmd.running')}</span>`;
  else if (error) summary = html`<${Badge} value="error" label=${`HTTP ${error.status}`} tone="bad" /> <span>${error.message}</span>`;
  else summary = html`<${Badge} value=${result.status} /> <span class="muted">${t('cmd.answer', { ms: fmt.number(result.durationMs, 1) })}</span>`;
  const body = error ? (error.detail ?? null) : result?.response;
  return html`<details class="answer" open=${open} data-command=${entry.command}>
    <summary><time>${fmt.clock(at)}</time> <b>${label}</b> ${summary}</summary>
    ${!running && body !== null && body !== undefined && html`<${Json} value=${body} />`}
  </details>`;
}

function Commands({ station, connectors, transactions }) {
  const { t } = useApp();
  const [answers, setAnswers] = useState([]);
  const [busy, setBusy] = useState(false);
  // version-neutral connector n: 1.6 connector n, 2.x EVSE n (docs/commands.md)
  const numbers = connectors.map((c) => c.evseId ?? c.connectorId).filter((n) => n > 0);
  const ids = numbers.length ? [...new Set(numbers)].sort((a, b) => a - b) : [1];
  const [form, setForm] = useState({ connector: String(ids[0] ?? 1), availability: 'operative', trigger: 'StatusNotification', idTag: '', tx: '' });
  const serial = useRef(0);
  const set = (name) => (e) => setForm({ ...form, [name]: e.currentTarget.value });
  const openTx = transactions.map((x) => x.transactionId);
  const txValue = form.tx || openTx[0] || '';

  const send = async (command, body, label) => {
    serial.current += 1;
    const id = serial.current;
    const at = new Date().toISOString();
    setBusy(true);
    setAnswers((a) => [{ id, command, label, at, running: true }, ...a].slice(0, ANSWERS_KEPT));
    const done = (fields) => setAnswers((a) => a.map((x) => (x.id === id ? { ...x, running: false, ...fields } : x)));
    try {
      const { data } = await post(`/api/stations/${encodeURIComponent(station.identity)}/commands/${command}`, body);
      done({ result: data });
    } catch (error) {
      done({ error });
    } finally {
      setBusy(false);
    }
  };
  const connectorId = Number(form.connector);
  const numericTx = (v) => (/^\d+$/.test(String(v)) && String(station.protocol || '').startsWith('ocpp1.') ? Number(v) : v);

  return html`<div class="commands">
    ${!station.online && html`<p class="notice warn">${t('station.offlineHint')}</p>`}
    <div class="command-row">
      <button type="button" disabled=${busy} onClick=${() => send('reset', { type: 'soft' }, t('cmd.reset-soft'))}>${t('cmd.reset-soft')}</button>
      <${ConfirmButton} disabled=${busy} onConfirm=${() => send('reset', { type: 'hard' }, t('cmd.reset-hard'))}>${t('cmd.reset-hard')}</${ConfirmButton}>
      <button type="button" disabled=${busy} onClick=${() => send('clear-cache', {}, t('cmd.clear-cache'))}>${t('cmd.clear-cache')}</button>
      <button type="button" disabled=${busy} onClick=${() => send('get-configuration', {}, t('cmd.get-configuration'))}>${t('cmd.get-configuration')}</button>
    </div>
    <div class="command-form">
      <label>${t('cmd.connectorId')}
        <select value=${form.connector} onChange=${set('connector')}>${ids.map((n) => html`<option value=${n}>${n}</option>`)}</select>
      </label>
      <button type="button" disabled=${busy} onClick=${() => send('unlock-connector', { connectorId }, `${t('cmd.unlock-connector')} ${connectorId}`)}>${t('cmd.unlock-connector')}</button>
      <select value=${form.availability} onChange=${set('availability')} aria-label=${t('cmd.change-availability')}>
        <option value="operative">${t('cmd.operative')}</option><option value="inoperative">${t('cmd.inoperative')}</option>
      </select>
      <button type="button" disabled=${busy} onClick=${() => send('change-availability', { connectorId, type: form.availability }, `${t('cmd.change-availability')} ${connectorId}: ${t(`cmd.${form.availability}`)}`)}>
        ${t('cmd.change-availability')}
      </button>
    </div>
    <div class="command-form">
      <select value=${form.trigger} onChange=${set('trigger')} aria-label=${t('cmd.trigger-message')}>${TRIGGERS.map((m) => html`<option value=${m}>${m}</option>`)}</select>
      <button type="button" disabled=${busy} onClick=${() => send('trigger-message', { message: form.trigger }, `${t('cmd.trigger-message')}: ${form.trigger}`)}>${t('cmd.trigger-message')}</button>
    </div>
    <div class="command-form">
      <input value=${form.idTag} onInput=${set('idTag')} placeholder=${t('cmd.idTag')} aria-label=${t('cmd.idTag')} size="14" />
      <button type="button" disabled=${busy || !form.idTag.trim()} onClick=${() => send('remote-start', { idTag: form.idTag.trim(), connectorId }, `${t('cmd.remote-start')} ${form.idTag.trim()} @ ${connectorId}`)}>
        ${t('cmd.remote-start')}
      </button>
      <input value=${txValue} onInput=${set('tx')} placeholder=${t('cmd.transactionId')} aria-label=${t('cmd.transactionId')} list="open-transactions" size="12" />
      <datalist id="open-transactions">${openTx.map((x) => html`<option value=${x} />`)}</datalist>
      <${ConfirmButton} disabled=${busy || !String(txValue).trim()} onConfirm=${() => send('remote-stop', { transactionId: numericTx(String(txValue).trim()) }, `${t('cmd.remote-stop')} ${txValue}`)}>
        ${t('cmd.remote-stop')}
      </${ConfirmButton}>
    </div>
    <h3 class="sub">${t('station.answers')}</h3>
    <div class="answers" aria-live="polite">
      ${answers.length ? answers.map((a, i) => html`<${Answer} key=${a.id} entry=${a} open=${i === 0} />`) : html`<p class="notice">${t('station.noAnswers')}</p>`}
    </div>
  </div>`;
}

const REFRESHING = new Set(['BootNotification', 'StatusNotification', 'Heartbeat', 'StartTransaction', 'StopTransaction', 'TransactionEvent', 'FirmwareStatusNotification', 'DiagnosticsStatusNotification', 'LogStatusNotification']);

export function Station({ route }) {
  const { t } = useApp();
  const id = route.id;
  const path = `/api/stations/${encodeURIComponent(id)}`;
  const station = useResource(path, null, { every: 30000 });
  const [txOffset, setTxOffset] = useState(0);
  const txs = useResource('/api/transactions', { identity: id, source: 'ocpp', limit: TX_LIMIT, offset: txOffset }, { every: 30000 });
  const refresh = useDebounced(() => {
    station.reload();
    txs.reload();
  }, 600);
  useStream('/api/events/stream', 'event', (e) => e.identity === id && refresh());

  const unknown = station.error?.status === 404;
  useEffect(() => {
    if (!unknown) return undefined;
    const timer = setInterval(station.reload, 3000); // it may be connecting right now
    return () => clearInterval(timer);
  }, [unknown]);

  const s = station.data;
  if (unknown && !s) {
    return html`<${PageHead} title=${t('station.title', { id })} /><p class="notice">${t('station.unknown', { id })}</p>`;
  }
  if (!s) return html`<${PageHead} title=${t('station.title', { id })} /><${Notice} error=${station.error} loading=${!station.error} />`;
  return html`
    <${PageHead} title=${t('station.title', { id })}>
      <a class="button ghost" href=${`#/messages?identity=${encodeURIComponent(id)}`}>${t('station.openLog')} ›</a>
    </${PageHead}>
    <div class="station-grid">
      <${Card} title=${t('station.identity')}><${Facts} station=${s} /></${Card}>
      <${Card} title=${t('station.commands')}>
        <${Commands} station=${s} connectors=${s.connectors} transactions=${s.activeTransactions || []} />
      </${Card}>
      <${Card} title=${t('station.connectors')}><${Connectors} connectors=${s.connectors} /></${Card}>
      <${Card} title=${t('station.transactions')} actions=${html`<${Pager} offset=${txOffset} limit=${TX_LIMIT} total=${txs.total} onChange=${setTxOffset} />`}>
        <${TransactionTable} rows=${txs.data || []} showStation=${false} showSource=${false} />
        <${Notice} error=${txs.error} empty=${txs.data && !txs.data.length} />
      </${Card}>
    </div>
    <${Card} title=${t('station.frames')} className="frames"><${MessageLog} identity=${id} tall=${false} onMessage=${(m) => m.type === 'CALL' && REFRESHING.has(m.method) && refresh()} /></${Card}>
  `;
}
