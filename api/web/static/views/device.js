// One MQTT device: its live state (every normalised field, per phase), its power over the last
// hours, the settings its family takes with the device's answers, its charging sessions, and the
// latest message it sent as stored.
import { post, url, useDebounced, useResource, useStream } from '../api.js';
import { PowerChart } from '../charts.js';
import { html, useEffect, useMemo, useRef, useState } from '../lib.js';
import { Badge, Card, Json, Notice, Pager, PageHead, useApp } from '../ui.js';
import { deviceOfReading, newer, Presence, useReloadWhenOpen, useTick, Vehicle } from './devices.js';
import { TransactionTable } from './sessions.js';

const TX_LIMIT = 10;
const ANSWERS_KEPT = 8;
const LIVE_POINTS = 5000;
const CHART_RELOAD_MS = 30000;
const RANGES = [
  { key: '1h', hours: 1, bucket: '10s' },
  { key: '6h', hours: 6, bucket: '1m' },
  { key: '24h', hours: 24, bucket: '5m' },
];

const SETTINGS_RETRY_MS = 3000;

/**
 * What the device shows of `setting` now, in the setting's own unit: the field `shownBy` names in
 * the device shape (a dot into `extra`), divided by `scale` where the device shows the value
 * written times a factor (evcc limitEnergy: kWh written, extra.limitEnergyWh shown). The settings
 * come from `GET /api/devices/{id}/settings`, i.e. gateways/mqtt/families.py `*_SETTINGS`.
 */
function shownOf(setting, device) {
  if (!setting.shownBy) return undefined;
  const value = setting.shownBy.split('.').reduce((v, name) => (v !== null && typeof v === 'object' ? v[name] : undefined), device);
  return setting.scale && typeof value === 'number' ? value / setting.scale : value;
}

const choicesOf = (setting) => (setting.type === 'flag' ? [true, false] : setting.options);
const isChoice = (setting) => setting.type === 'choice' || setting.type === 'flag';

/** `t` with a fallback: the key's translation, or `fallback` when the dictionaries lack it. */
function label(t, key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

const optionLabel = (t, key, value) => label(t, `setting.${key}.${value}`, String(value));

function numberText(fmt, value, unit) {
  const digits = Number.isInteger(value) ? 0 : 1;
  return unit ? fmt.unit(value, unit, digits) : fmt.number(value, digits);
}

function showValue(t, fmt, setting, value) {
  if (value === null || value === undefined) return html`<span class="muted">–</span>`;
  if (isChoice(setting)) return optionLabel(t, setting.key, value);
  if (setting.type === 'number') return numberText(fmt, value, setting.unit);
  return html`<span class="mono small">${JSON.stringify(value)}</span>`;
}

// --- live state ---------------------------------------------------------------------------------

function Facts({ device }) {
  const { t, fmt } = useApp();
  const d = device;
  const yesNo = (v) => (v === null || v === undefined ? '–' : t(v ? 'common.yes' : 'common.no'));
  const row = (key, labelText, value) => html`<div class="fact" data-field=${key}><dt>${labelText}</dt><dd>${value}</dd></div>`;
  return html`<dl class="facts-grid">
    ${row('online', t('col.status'), html`<${Presence} device=${d} /> ${d.retained && html`<${Badge} value="retained" label=${t('device.retained')} tone="warn" />`}`)}
    ${row('vehicle', t('col.vehicle'), html`<${Vehicle} device=${d} />`)}
    ${row('state', t('device.state'), d.state || d.stateRaw ? html`<b>${d.state || '–'}</b> ${d.stateRaw !== null && html`<span class="muted mono">(${d.stateRaw})</span>`}` : '–')}
    ${row('enabled', t('device.enabled'), yesNo(d.enabled))}
    ${row('mode', t('device.mode'), d.mode ? optionLabel(t, 'mode', d.mode) : '–')}
    ${row('powerW', t('col.power'), html`<b class="big">${fmt.power(d.powerW)}</b>`)}
    ${row('sessionEnergyWh', t('col.sessionEnergy'), fmt.energy(d.sessionEnergyWh))}
    ${row('energyWh', t('device.energyTotal'), fmt.energy(d.energyWh))}
    ${row('socPct', t('col.soc'), fmt.unit(d.socPct, '%'))}
    ${row('offeredCurrentA', t('device.offered'), fmt.unit(d.offeredCurrentA, 'A', 1))}
    ${row('phases', t('device.phases'), d.phases ?? '–')}
    ${row('temperatureC', t('device.temperature'), fmt.unit(d.temperatureC, '°C', 1))}
    ${row('lastSeenAt', t('col.lastSeen'), d.lastSeenAt ? html`<span title=${fmt.dateTime(d.lastSeenAt)}>${fmt.ago(d.lastSeenAt)}</span>` : t('devices.replayed'))}
    ${row('updatedAt', t('device.updated'), fmt.dateTime(d.updatedAt))}
    ${row('firstSeenAt', t('station.firstSeen'), fmt.dateTime(d.firstSeenAt))}
    ${row('source', t('device.where'), html`<span class="mono">${d.source} / ${d.device}</span> · ${d.kind ? t(`kind.${d.kind}`) : '–'}`)}
  </dl>`;
}

function Phases({ device }) {
  const { t, fmt } = useApp();
  const currents = device.currentsA || [];
  const voltages = device.voltagesV || [];
  if (!currents.some((v) => v !== null) && !voltages.some((v) => v !== null)) return null;
  return html`<table class="grid compact phases" aria-label=${t('device.perPhase')}>
    <thead><tr><th></th>${[1, 2, 3].map((n) => html`<th class="num">L${n}</th>`)}</tr></thead>
    <tbody>
      <tr><th scope="row">${t('device.current')}</th>${[0, 1, 2].map((i) => html`<td class="num">${fmt.unit(currents[i], 'A', 1)}</td>`)}</tr>
      <tr><th scope="row">${t('device.voltage')}</th>${[0, 1, 2].map((i) => html`<td class="num">${fmt.unit(voltages[i], 'V')}</td>`)}</tr>
    </tbody>
  </table>`;
}

function Problems({ device }) {
  const { t } = useApp();
  const errors = device.errors || [];
  const flags = device.flags || [];
  return html`<div class="problems">
    <div><span class="label">${t('device.errors')}</span>
      ${errors.length ? errors.map((e) => html`<${Badge} value=${e} tone="bad" />`) : html`<span class="muted">${t('device.noErrors')}</span>`}
    </div>
    ${flags.length > 0 &&
    html`<div title=${t('device.flagsHint')}><span class="label">${t('device.flags')}</span>${flags.map((f) => html`<${Badge} value=${f} tone="warn" />`)}</div>`}
  </div>`;
}

// --- settings -----------------------------------------------------------------------------------

const blank = (v) => v === null || v === undefined;
const fieldLabel = (t, name) => label(t, `setting.doc.${name}`, name);
const fieldOption = (t, field, value) => (field.type === 'flag' ? t(value ? 'common.yes' : 'common.no') : label(t, `setting.doc.${value}`, String(value)));

function initialDraft(setting, shown) {
  if (setting.type !== 'object') return blank(shown) ? '' : String(shown); // a choice unknown: choose first
  // an object: the members the device shows; a choice member (OpenEVSE's state) its first option
  const doc = shown !== null && typeof shown === 'object' ? shown : {};
  return Object.fromEntries(
    Object.entries(setting.fields).map(([name, field]) => {
      if (!blank(doc[name])) return [name, String(doc[name])];
      return [name, field.type === 'choice' ? String(field.options[0]) : ''];
    }),
  );
}

/** The JSON value of `draft` for a check as the API describes it, or undefined while incomplete. */
function parsed(check, draft) {
  if (isChoice(check)) return choicesOf(check).find((o) => String(o) === draft);
  if (check.type === 'number') {
    if (String(draft).trim() === '') return undefined;
    const n = Number(draft);
    return Number.isFinite(n) ? n : undefined;
  }
  const doc = {};
  for (const [name, field] of Object.entries(check.fields)) {
    if (String(draft[name] ?? '').trim() === '') continue; // left out
    const member = parsed(field, draft[name]);
    if (member === undefined) return undefined;
    doc[name] = member;
  }
  return Object.keys(doc).length ? doc : undefined;
}

function ChoiceInput({ options, value, onChange, optional, text, ariaLabel, placeholder }) {
  return html`<select value=${value} onChange=${(e) => onChange(e.currentTarget.value)} aria-label=${ariaLabel}>
    ${(optional || value === '') && html`<option value="">${placeholder}</option>`}
    ${options.map((o) => html`<option value=${String(o)}>${text(o)}</option>`)}
  </select>`;
}

function NumberInput({ check, unit, value, onChange, ariaLabel, placeholder }) {
  return html`<span class="with-unit"><input type="number" min=${check.min} max=${check.max} step=${check.integer ? 1 : 'any'} value=${value}
    placeholder=${placeholder} onInput=${(e) => onChange(e.currentTarget.value)} aria-label=${ariaLabel} /> ${unit || ''}</span>`;
}

/** An object setting (OpenEVSE's override, claim): an input per member, empty ones left out. */
function DocumentInput({ setting, name, draft, setDraft }) {
  const { t } = useApp();
  return html`<span class="document">
    ${Object.entries(setting.fields).map(([member, field]) => {
      const text = fieldLabel(t, member);
      const set = (v) => setDraft({ ...draft, [member]: v });
      if (field.type === 'number') {
        return html`<${NumberInput} check=${field} unit=${field.unit} value=${draft[member]} onChange=${set} ariaLabel=${`${name}: ${text}`} placeholder=${text} />`;
      }
      return html`<${ChoiceInput} options=${choicesOf(field)} value=${draft[member]} onChange=${set} optional=${field.type === 'flag'}
        text=${(o) => fieldOption(t, field, o)} ariaLabel=${`${name}: ${text}`} placeholder=${`${text}: –`} />`;
    })}
  </span>`;
}

function SettingRow({ setting, device, busy, onSend }) {
  const { t, fmt } = useApp();
  const shown = shownOf(setting, device);
  const [draft, setDraft] = useState(() => initialDraft(setting, shown));
  const name = label(t, `setting.${setting.key}`, setting.key);
  const value = parsed(setting, draft);
  const send = (v, text) => onSend(setting, v, `${name}: ${text}`);
  let input;
  if (isChoice(setting)) {
    input = html`<${ChoiceInput} options=${choicesOf(setting)} value=${draft} onChange=${setDraft}
      text=${(o) => optionLabel(t, setting.key, o)} ariaLabel=${name} placeholder=${t('setting.choose')} />`;
  } else if (setting.type === 'number') {
    input = html`<${NumberInput} check=${setting} unit=${setting.unit} value=${draft} onChange=${setDraft} ariaLabel=${name} />`;
  } else {
    input = html`<${DocumentInput} setting=${setting} name=${name} draft=${draft} setDraft=${setDraft} />`;
  }
  const text = isChoice(setting) ? optionLabel(t, setting.key, value) : setting.type === 'number' ? `${draft} ${setting.unit || ''}`.trim() : JSON.stringify(value);
  const words = setting.type === 'object' ? setting.words : [];
  return html`<tr data-setting=${setting.key}>
    <th scope="row">${name} <span class="mono muted small">${setting.key}</span></th>
    <td class="shown">${showValue(t, fmt, setting, shown)}</td>
    <td>${input}</td>
    <td class="nowrap">
      <button type="button" class="primary" disabled=${busy || value === undefined} onClick=${() => send(value, text)}>${t('cmd.set')}</button>
      ${words.map((word) => {
        const wordText = fieldLabel(t, word);
        return html` <button type="button" disabled=${busy} onClick=${() => send(word, wordText)}>${wordText}</button>`;
      })}
    </td>
  </tr>`;
}

function SettingAnswer({ entry, open }) {
  const { t, fmt } = useApp();
  const { text, at, result, error, running, key } = entry;
  let summary;
  if (running) summary = html`<span class="muted">${t('setting.running')}</span>`;
  else if (error) {
    const tone = error.status === 504 || error.status === 503 ? 'warn' : 'bad';
    summary = html`<${Badge} value="error" label=${`HTTP ${error.status}`} tone=${tone} /> <span class="answer-text">${error.message}</span>`;
  } else {
    const note = {
      applied: t('setting.applied', { ms: fmt.number(result.durationMs, 0) }),
      unchanged: t('setting.unchanged'),
      sent: t('setting.sent'),
    }[result.status];
    summary = html`<${Badge} value=${result.status} label=${label(t, `setting.status.${result.status}`, result.status)} tone=${result.status === 'sent' ? 'busy' : result.status === 'unchanged' ? 'plain' : 'ok'} />
      <span class="muted answer-text">${note}</span>`;
  }
  const hint = error?.detail?.hint;
  const body = error ? (error.detail ?? null) : result;
  return html`<details class="answer" open=${open} data-setting=${key}>
    <summary><time>${fmt.clock(at)}</time> <b>${text}</b> ${summary}</summary>
    ${hint && html`<p class="notice warn">${hint}</p>`}
    ${!running && body !== null && body !== undefined && html`<${Json} value=${body} />`}
  </details>`;
}

function Settings({ device }) {
  const { t } = useApp();
  const [answers, setAnswers] = useState([]);
  const [busy, setBusy] = useState(() => new Set());
  const serial = useRef(0);
  const listed = useResource(`/api/devices/${encodeURIComponent(device.id)}/settings`);
  const unknown = listed.error?.status === 404; // seen live before the read model has it
  useEffect(() => {
    if (!unknown) return undefined;
    const timer = setInterval(listed.reload, SETTINGS_RETRY_MS);
    return () => clearInterval(timer);
  }, [unknown]);
  if (!listed.data) return html`<${Notice} error=${unknown ? null : listed.error} loading=${true} />`;
  const settings = listed.data.filter((s) => !s.aliasOf); // an alias writes the same as its key
  if (!settings.length) return html`<p class="notice">${t('device.noSettings')}</p>`;
  const send = async (setting, value, text) => {
    serial.current += 1;
    const id = serial.current;
    const at = new Date().toISOString();
    setBusy((b) => new Set(b).add(setting.key));
    setAnswers((a) => [{ id, key: setting.key, text, at, running: true }, ...a].slice(0, ANSWERS_KEPT));
    const done = (fields) => setAnswers((a) => a.map((x) => (x.id === id ? { ...x, running: false, ...fields } : x)));
    try {
      const path = `/api/devices/${encodeURIComponent(device.id)}/settings/${encodeURIComponent(setting.key)}`;
      const { data } = await post(path, { value }, setting.timeoutS ? { timeout: setting.timeoutS } : undefined);
      done({ result: data });
    } catch (error) {
      done({ error });
    } finally {
      setBusy((b) => {
        const next = new Set(b);
        next.delete(setting.key);
        return next;
      });
    }
  };
  return html`<div class="commands">
    ${device.online === false && html`<p class="notice warn">${t('device.offlineHint')}</p>`}
    <table class="grid compact settings" aria-label=${t('device.settings')}>
      <thead><tr><th>${t('setting.name')}</th><th>${t('setting.shown')}</th><th>${t('setting.new')}</th><th></th></tr></thead>
      <tbody>${settings.map((s) => html`<${SettingRow} key=${s.key} setting=${s} device=${device} busy=${busy.has(s.key)} onSend=${send} />`)}</tbody>
    </table>
    <h3 class="sub">${t('station.answers')}</h3>
    <div class="answers" aria-live="polite">
      ${answers.length ? answers.map((a, i) => html`<${SettingAnswer} key=${a.id} entry=${a} open=${i === 0} />`) : html`<p class="notice">${t('device.noAnswers')}</p>`}
    </div>
  </div>`;
}

// --- power chart --------------------------------------------------------------------------------

const pointOf = (r) => ({
  at: Date.parse(r.ts) / 1000,
  powerW: r.online === false ? null : (r.powerW ?? null), // a device marked offline: unknown
  socPct: r.socPct ?? null,
});

function PowerCard({ path, device, live }) {
  const { t } = useApp();
  const [range, setRange] = useState(RANGES[0]);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => document.visibilityState === 'visible' && setNow(Date.now()), CHART_RELOAD_MS);
    return () => clearInterval(timer);
  }, []);
  const since = new Date(now - range.hours * 3600 * 1000).toISOString();
  const buckets = useResource(`${path}/readings`, { since, bucket: range.bucket });
  const points = useMemo(() => {
    const rows = (buckets.data || []).map((b) => ({ at: Date.parse(b.ts) / 1000, powerW: b.powerW, socPct: b.socPct }));
    const last = rows.length ? rows[rows.length - 1].at : 0;
    const out = [...rows, ...live.filter((p) => p.at > last)];
    const end = Math.max(Date.now() / 1000, out.length ? out[out.length - 1].at : 0);
    // the value in effect now holds to the chart's right edge
    out.push({ at: end, powerW: device.online === false ? null : device.powerW, socPct: device.socPct });
    return out;
  }, [buckets.data, live, device.powerW, device.socPct, device.online]);
  const labels = useMemo(() => ({ power: t('chart.power'), soc: t('chart.soc'), time: t('common.time') }), [t]);
  // a device seen for the first time within the range: the chart starts when it was
  const from = Math.max(Date.parse(since), Date.parse(device.firstSeenAt || '') || 0) / 1000;
  const hasData = points.some((p) => p.powerW !== null && p.powerW !== undefined);
  return html`<${Card}
    title=${t('device.power')}
    actions=${html`<div class="segmented" role="group" aria-label=${t('device.range')}>
      ${RANGES.map(
        (r) => html`<button type="button" class=${r.key === range.key ? 'on' : ''} aria-pressed=${r.key === range.key} onClick=${() => setRange(r)}>
          ${t(`device.range.${r.key}`)}
        </button>`,
      )}
    </div>`}
  >
    ${hasData
      ? html`<${PowerChart} points=${points} labels=${labels} from=${from} to=${null} />`
      : html`<p class="notice chart-wait">${buckets.error ? t('common.error', { error: buckets.error.message }) : buckets.loading ? t('common.loading') : t('device.noPower')}</p>`}
    <p class="muted small">${t('device.bucket', { bucket: range.bucket })}</p>
  </${Card}>`;
}

// --- the page -----------------------------------------------------------------------------------

function LatestReading({ reading }) {
  const { t, fmt } = useApp();
  if (!reading) return html`<p class="notice">${t('common.none')}</p>`;
  return html`<dl class="facts">
      <dt>${t('device.rawTopic')}</dt><dd class="mono">${reading.rawTopic || html`<span class="muted">${t('device.byGateway')}</span>`}</dd>
      <dt>${t('device.rawPayload')}</dt><dd class="mono ellipsis" title=${reading.raw ?? ''}>${reading.raw ?? '–'}</dd>
      <dt>${t('device.changed')}</dt><dd class="mono">${Array.isArray(reading.changed) && reading.changed.length ? reading.changed.join(', ') : '–'}</dd>
      <dt>${t('common.time')}</dt><dd>${fmt.dateTime(reading.ts)} ${reading.retained && html`<${Badge} value="retained" label=${t('device.retained')} tone="warn" />`}</dd>
    </dl>
    <details class="reading-json"><summary>${t('device.readingJson')}</summary><${Json} value=${reading} /></details>`;
}

export function Device({ route }) {
  const { t } = useApp();
  const id = route.id;
  const path = `/api/devices/${encodeURIComponent(id)}`;
  const detail = useResource(path, null, { every: 30000 });
  const [live, setLive] = useState(null); // the newest reading event of this device
  const [points, setPoints] = useState([]); // live chart points since the page opened
  const [txOffset, setTxOffset] = useState(0);
  const txs = useResource('/api/transactions', { identity: id, source: 'mqtt', limit: TX_LIMIT, offset: txOffset }, { every: 30000 });
  const refreshSessions = useDebounced(txs.reload, 1500); // after the read model folded the reading
  const plug = useRef(null);
  const stream = useStream(url('/api/devices/stream', { device: id }), 'reading', (r) => {
    if (r.id !== id) return;
    setLive(r);
    setPoints((p) => [...p, pointOf(r)].slice(-LIVE_POINTS));
    const now = `${r.connected}/${r.charging}`;
    if (plug.current !== null && plug.current !== now) refreshSessions();
    plug.current = now;
  });
  useReloadWhenOpen(stream, detail.reload);
  useTick(10000);

  const unknown = detail.error?.status === 404;
  useEffect(() => {
    if (!unknown) return undefined;
    const timer = setInterval(detail.reload, 3000); // it may be publishing its first values right now
    return () => clearInterval(timer);
  }, [unknown]);

  const fromLive = live ? deviceOfReading(live, detail.data) : null;
  const d = newer(detail.data, fromLive);
  const heading = t('device.title', { name: d?.title || d?.device || id });
  const back = html`<a class="button ghost" href="#/devices">‹ ${t('nav.devices')}</a>`;
  if (!d) {
    return html`<${PageHead} title=${heading}>${back}</${PageHead}>
      ${unknown ? html`<p class="notice">${t('device.unknown', { id })}</p>` : html`<${Notice} error=${detail.error} loading=${!detail.error} />`}`;
  }
  const stored = detail.data?.reading;
  const reading = live && (!stored || Date.parse(live.ts) >= Date.parse(stored.ts)) ? live : (stored ?? null);
  return html`
    <${PageHead} title=${heading}>
      <span class="mono muted">${id}</span>
      ${back}
    </${PageHead}>
    <div class="station-grid">
      <${Card} title=${t('device.live')} className="device-state">
        <${Facts} device=${d} />
        <${Phases} device=${d} />
        <${Problems} device=${d} />
        ${d.extra && Object.keys(d.extra).length > 0 &&
        html`<h3 class="sub">${t('device.extra')}</h3><${Json} value=${d.extra} />`}
      </${Card}>
      <${Card} title=${t('device.settings')}><${Settings} device=${d} /></${Card}>
    </div>
    <${PowerCard} path=${path} device=${d} live=${points} />
    <${Card} title=${t('station.transactions')} actions=${html`<${Pager} offset=${txOffset} limit=${TX_LIMIT} total=${txs.total} onChange=${setTxOffset} />`}>
      <${TransactionTable} rows=${txs.data || []} showStation=${false} showSource=${false} forDevice=${true} />
      <${Notice} error=${txs.error} empty=${txs.data && !txs.data.length} />
    </${Card}>
    <${Card} title=${t('device.latestReading')}><${LatestReading} reading=${reading} /></${Card}>
  `;
}
