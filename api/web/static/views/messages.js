// The live message log: the latest frames from /api/messages, then every new one from
// /api/messages/stream, newest first, at most `cap` rows in memory and only the visible ones
// rendered. Filters go to both. A selected frame shows its payload beside its request/answer.
import { get, url, useStream } from '../api.js';
import { html, useCallback, useEffect, useMemo, useRef, useState } from '../lib.js';
import { Badge, Card, Field, Json, PageHead, StationLink, VirtualRows, useApp } from '../ui.js';

const FIRST_PAGE = 200;
const OLDER_PAGE = 500;
const CAP = 5000;
const MAX_CAP = 20000;
const ROW_HEIGHT = 26;
const POLL_MS = 5000; // only while the stream is down
const ACTIONS = [
  'Authorize', 'BootNotification', 'CancelReservation', 'ChangeAvailability', 'ChangeConfiguration', 'ClearCache',
  'DataTransfer', 'DiagnosticsStatusNotification', 'FirmwareStatusNotification', 'GetConfiguration', 'GetVariables',
  'Heartbeat', 'MeterValues', 'NotifyEvent', 'NotifyReport', 'RemoteStartTransaction', 'RemoteStopTransaction',
  'RequestStartTransaction', 'RequestStopTransaction', 'Reset', 'SetVariables', 'StartTransaction',
  'StatusNotification', 'StopTransaction', 'TransactionEvent', 'TriggerMessage', 'UnlockConnector',
];

export function MessageDirection({ value }) {
  return html`<span class=${`dir ${value === 'IN' ? 'in' : 'out'}`} title=${value}>${value === 'IN' ? '← IN' : '→ OUT'}</span>`;
}

export function MessageType({ value }) {
  const tone = { CALL: 'call', CALLRESULT: 'result', CALLERROR: 'error', CALLRESULTERROR: 'error', INVALID: 'error' }[value] || 'call';
  return html`<span class=${`mtype ${tone}`}>${value}</span>`;
}

const byIdDesc = (a, b) => b.id - a.id;
const pairKey = (m) => `${m.identity}\u0000${m.uniqueId}`;

/** rows + incoming, without duplicates (the stored version of a frame wins), newest first. */
function merge(rows, incoming, cap) {
  if (!incoming.length) return rows;
  const seen = new Map(rows.map((r) => [r.id, r]));
  for (const m of incoming) {
    const known = seen.get(m.id);
    if (!known || (known.responseTime == null && m.responseTime != null)) seen.set(m.id, m);
  }
  return [...seen.values()].sort(byIdDesc).slice(0, cap);
}

function preview(payload) {
  if (payload === null || payload === undefined) return '';
  const text = JSON.stringify(payload);
  return text.length > 240 ? `${text.slice(0, 240)}…` : text;
}

function useFilters(initial, locked) {
  const [draft, setDraft] = useState(initial);
  const [applied, setApplied] = useState(initial);
  useEffect(() => {
    const timer = setTimeout(() => setApplied({ ...draft, ...locked }), 350);
    return () => clearTimeout(timer);
  }, [draft.identity, draft.method, draft.direction, draft.type]);
  return [draft, setDraft, { ...applied, ...locked }];
}

function FrameDetail({ frame, pair, onClose }) {
  const { t, fmt } = useApp();
  const request = frame.type === 'CALL' ? frame : pair;
  const answer = frame.type === 'CALL' ? pair : frame;
  const part = (label, m) =>
    html`<div class="frame-part">
      <h3>${label} ${m && html`<${MessageDirection} value=${m.direction} /> <${MessageType} value=${m.type} />`}</h3>
      ${m
        ? html`<dl class="facts">
              <dt>${t('common.time')}</dt><dd class="mono">${fmt.dateTime(m.timestamp)} (${fmt.clock(m.timestamp)})</dd>
              <dt>${t('field.streamSeq')}</dt><dd class="mono">${m.id}</dd>
              ${m.errorCode && html`<dt>${t('field.error')}</dt><dd><${Badge} value=${m.errorCode} tone="bad" /> ${m.errorDescription}</dd>`}
            </dl>
            <${Json} value=${m.payload} />`
        : html`<p class="notice">${t('messages.noPair')}</p>`}
    </div>`;
  return html`<aside class="frame-detail" aria-label=${t('messages.payload')}>
    <header>
      <div>
        <b>${frame.method || '–'}</b> <${StationLink} id=${frame.identity} />
        <div class="muted small">
          ${t('field.uniqueId')}: <span class="mono">${frame.uniqueId || '–'}</span> · ${frame.protocol || ''}
          ${request?.responseTime != null && html` · ${t('field.responseTime')}: ${fmt.ms(request.responseTime)}`}
        </div>
      </div>
      <button type="button" class="ghost small" onClick=${onClose} aria-label=${t('common.close')}>✕</button>
    </header>
    ${frame.type === 'INVALID' ? part(t('messages.payload'), frame) : html`${part(t('messages.request'), request)}${part(t('messages.answer'), answer)}`}
  </aside>`;
}

/**
 * The log itself. `identity` fixes the station filter (the station page); `initial` are the
 * filters to start with (from the URL); `onMessage` sees each frame that arrives live.
 */
export function MessageLog({ identity, initial = {}, tall = true, onMessage }) {
  const { t, fmt } = useApp();
  const locked = identity ? { identity } : {};
  const [draft, setDraft, filters] = useFilters(
    { identity: '', method: '', direction: '', type: '', ...initial },
    locked,
  );
  const [rows, setRows] = useState([]);
  const [paused, setPaused] = useState(false);
  const [selected, setSelected] = useState(null);
  const [cap, setCap] = useState(CAP);
  const [olderDone, setOlderDone] = useState(false);
  const incoming = useRef([]); // arrived since the last frame was drawn
  const held = useRef([]); // arrived while paused
  const calls = useRef(new Map()); // open CALLs seen live, to fill in responseTime
  const flushing = useRef(false);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const capRef = useRef(cap);
  capRef.current = cap;
  const generation = useRef(0); // answers for an earlier filter are dropped

  const key = JSON.stringify(filters);
  const streamPath = url('/api/messages/stream', filters);

  const flush = useCallback(() => {
    flushing.current = false;
    const batch = incoming.current;
    incoming.current = [];
    if (!batch.length) return;
    if (pausedRef.current) {
      held.current.push(...batch);
      setRows((r) => r.slice()); // redraw the "n new" count
      return;
    }
    setRows((r) => merge(r, batch, capRef.current));
  }, []);

  const take = useCallback((messages) => {
    const open = calls.current;
    for (const m of messages) {
      if (!m.uniqueId) continue;
      if (m.type === 'CALL') {
        open.set(pairKey(m), m);
        if (open.size > CAP) open.delete(open.keys().next().value);
      } else {
        const call = open.get(pairKey(m));
        if (call && call.responseTime == null) {
          call.responseTime = Math.max(0, new Date(m.timestamp) - new Date(call.timestamp));
          open.delete(pairKey(m));
        }
      }
    }
    incoming.current.push(...messages);
    if (!flushing.current) {
      flushing.current = true;
      requestAnimationFrame(flush);
    }
  }, [flush]);

  // a new filter: start over
  useEffect(() => {
    generation.current += 1;
    setRows([]);
    held.current = [];
    incoming.current = [];
    calls.current = new Map();
    setSelected(null);
    setCap(CAP);
    setOlderDone(false);
  }, [key]);

  const loadLatest = useCallback(() => {
    const asked = generation.current;
    get('/api/messages', { ...filters, limit: FIRST_PAGE })
      .then(({ data }) => asked === generation.current && take(data))
      .catch(() => {});
  }, [key, take]);

  const state = useStream(streamPath, 'message', (m) => {
    take([m]);
    if (onMessage) onMessage(m);
  });
  useEffect(loadLatest, [key]);
  useEffect(() => {
    if (state === 'open') loadLatest(); // again once live: nothing between the two is missed
    if (state !== 'down') return undefined;
    const timer = setInterval(() => document.visibilityState === 'visible' && loadLatest(), POLL_MS);
    return () => clearInterval(timer);
  }, [state, key]);

  const loadOlder = () => {
    const oldest = rows.at(-1);
    if (!oldest) return;
    const asked = generation.current;
    get('/api/messages', { ...filters, until: oldest.timestamp, limit: OLDER_PAGE })
      .then(({ data }) => {
        if (asked !== generation.current) return;
        if (data.length < OLDER_PAGE) setOlderDone(true);
        const next = Math.min(MAX_CAP, capRef.current + OLDER_PAGE);
        capRef.current = next;
        setCap(next);
        setRows((r) => merge(r, data, next));
      })
      .catch(() => {});
  };

  const togglePause = () => {
    if (paused) {
      const batch = held.current;
      held.current = [];
      setRows((r) => merge(r, batch, capRef.current));
    }
    setPaused(!paused);
  };

  const chosen = selected === null ? null : rows.find((r) => r.id === selected);
  const pair = useMemo(
    () => chosen && chosen.uniqueId && rows.find((r) => r.id !== chosen.id && r.identity === chosen.identity && r.uniqueId === chosen.uniqueId && (chosen.type === 'CALL') !== (r.type === 'CALL')),
    [chosen, rows],
  );

  const set = (name) => (e) => setDraft({ ...draft, [name]: e.currentTarget.value });
  const columns = identity ? 'log-cols no-station' : 'log-cols';
  const renderRow = (m) => html`<div
    key=${m.id}
    class=${`log-row ${columns} ${m.id === selected ? 'selected' : ''} ${m.type === 'CALLERROR' || m.type === 'INVALID' ? 'is-error' : ''}`}
    role="row"
    aria-selected=${m.id === selected}
    onClick=${() => setSelected(m.id === selected ? null : m.id)}
  >
    <span class="mono">${fmt.clock(m.timestamp)}</span>
    ${!identity && html`<span class="ellipsis"><${StationLink} id=${m.identity} /></span>`}
    <span><${MessageDirection} value=${m.direction} /></span>
    <span><${MessageType} value=${m.type} /></span>
    <span class="ellipsis action">${m.method || '–'}</span>
    <span class="num mono">${m.responseTime != null ? fmt.number(m.responseTime, m.responseTime < 10 ? 1 : 0) : ''}</span>
    <span class="ellipsis mono payload">${m.errorCode ? `${m.errorCode} ${m.errorDescription || ''}` : preview(m.payload)}</span>
  </div>`;

  return html`<div class=${`log ${tall ? 'tall' : 'short'}`}>
    <div class="toolbar">
      ${!identity &&
      html`<${Field} label=${t('messages.filterStation')}>
        <input type="search" value=${draft.identity} onInput=${set('identity')} placeholder=${t('common.any')} aria-label=${t('messages.filterStation')} />
      </${Field}>`}
      <${Field} label=${t('messages.filterMethod')}>
        <input type="search" list="ocpp-actions" value=${draft.method} onInput=${set('method')} placeholder=${t('common.any')} aria-label=${t('messages.filterMethod')} />
      </${Field}>
      <datalist id="ocpp-actions">${ACTIONS.map((a) => html`<option value=${a} />`)}</datalist>
      <${Field} label=${t('messages.direction')}>
        <select value=${draft.direction} onChange=${set('direction')} aria-label=${t('messages.direction')}>
          <option value="">${t('common.all')}</option><option value="IN">IN</option><option value="OUT">OUT</option>
        </select>
      </${Field}>
      <${Field} label=${t('messages.type')}>
        <select value=${draft.type} onChange=${set('type')} aria-label=${t('messages.type')}>
          <option value="">${t('common.all')}</option>
          ${['CALL', 'CALLRESULT', 'CALLERROR', 'CALLRESULTERROR', 'SEND', 'INVALID'].map((x) => html`<option value=${x}>${x}</option>`)}
        </select>
      </${Field}>
      <span class="spacer"></span>
      <span class="muted small">${t('messages.rows', { n: fmt.number(rows.length), max: fmt.number(cap) })}</span>
      <button type="button" class=${paused ? 'primary' : ''} onClick=${togglePause}>
        ${paused ? `▶ ${t('messages.resume')} · ${t('messages.paused', { n: fmt.number(held.current.length) })}` : `❚❚ ${t('messages.pause')}`}
      </button>
    </div>
    <div class="log-body">
      <div class="log-table" role="grid" aria-label=${t('messages.title')}>
        <div class=${`log-head ${columns}`} role="row">
          <span>${t('common.time')}</span>
          ${!identity && html`<span>${t('col.identity')}</span>`}
          <span>${t('col.dir')}</span><span>${t('col.type')}</span><span>${t('col.action')}</span>
          <span class="num">${t('col.ms')}</span><span>${t('col.payload')}</span>
        </div>
        <${VirtualRows} rows=${rows} rowHeight=${ROW_HEIGHT} renderRow=${renderRow} keyOf=${(m) => m.id} />
        <div class="log-foot">
          <span class="muted small">${!rows.length ? t('common.none') : chosen ? '' : t('messages.selectHint')}</span>
          <span class="spacer"></span>
          <button type="button" class="ghost small" disabled=${!rows.length || olderDone || cap >= MAX_CAP} onClick=${loadOlder}>${t('messages.loadOlder')}</button>
        </div>
      </div>
      ${chosen && html`<${FrameDetail} frame=${chosen} pair=${pair} onClose=${() => setSelected(null)} />`}
    </div>
  </div>`;
}

export function Messages({ route }) {
  const { t } = useApp();
  const q = route.query;
  const initial = { identity: q.get('identity') || '', method: q.get('method') || '', direction: q.get('direction') || '', type: q.get('type') || '' };
  return html`<${PageHead} title=${t('messages.title')} />
    <${Card} className="fill"><${MessageLog} initial=${initial} /></${Card}>`;
}
