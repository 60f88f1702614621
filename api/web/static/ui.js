// Building blocks shared by the views: context, cards, badges, pager, JSON viewer, virtual rows.
import { createContext, html, useContext, useEffect, useLayoutEffect, useRef, useState } from './lib.js';

/** {t, fmt, lang, setLang, user, logout} for every view. */
export const App = createContext(null);
export const useApp = () => useContext(App);

export const stationHref = (id) => `#/stations/${encodeURIComponent(id)}`;

export function StationLink({ id }) {
  if (!id) return html`<span class="muted">–</span>`;
  return html`<a class="station" href=${stationHref(id)}>${id}</a>`;
}

/** A device page's address: the id's own `%` escapes are encoded once more (`%` → `%25`). */
export const deviceHref = (id) => `#/devices/${encodeURIComponent(id)}`;

export function DeviceLink({ id, title }) {
  if (!id) return html`<span class="muted">–</span>`;
  return html`<a class="station" href=${deviceHref(id)}>${title || id}</a>`;
}

const TONES = {
  ok: ['online', 'alive', 'accepted', 'available', 'answered', 'operative', 'active', 'info', 'unlocked', 'installed', 'applied'],
  busy: ['charging', 'occupied', 'preparing', 'finishing', 'requested', 'sent', 'scheduled', 'downloading', 'installing'],
  warn: ['suspendedev', 'suspendedevse', 'reserved', 'warning', 'silent', 'rejected', 'pending', 'notsupported', 'timed_out', 'timeout', 'rebootrequired'],
  bad: ['faulted', 'critical', 'failed', 'error', 'callerror', 'unlockfailed', 'invalid', 'blocked', 'expired', 'installationfailed', 'downloadfailed'],
  off: ['offline', 'unavailable', 'inoperative', 'completed', 'idle', 'unknown'],
};
const TONE_OF = new Map(Object.entries(TONES).flatMap(([tone, names]) => names.map((n) => [n, tone])));

export function toneOf(value) {
  return TONE_OF.get(String(value || '').toLowerCase()) || 'plain';
}

/** A coloured label; the tone follows the value (online, Accepted, Faulted, …) unless given. */
export function Badge({ value, label, tone }) {
  if (value === null || value === undefined || value === '') return html`<span class="muted">–</span>`;
  return html`<span class=${`badge ${tone || toneOf(value)}`}>${label ?? value}</span>`;
}

export function Card({ title, actions, children, className = '' }) {
  return html`<section class=${`card ${className}`}>
    ${(title || actions) &&
    html`<header class="card-head"><h2>${title}</h2><div class="card-actions">${actions}</div></header>`}
    <div class="card-body">${children}</div>
  </section>`;
}

export function PageHead({ title, children }) {
  return html`<div class="page-head"><h1>${title}</h1><div class="page-tools">${children}</div></div>`;
}

export function Field({ label, children, wide }) {
  return html`<label class=${wide ? 'field wide' : 'field'}><span>${label}</span>${children}</label>`;
}

export function Notice({ error, loading, empty }) {
  const { t } = useApp();
  if (error) return html`<p class="notice bad">${t('common.error', { error: error.message })}</p>`;
  if (loading) return html`<p class="notice">${t('common.loading')}</p>`;
  if (empty) return html`<p class="notice">${t('common.none')}</p>`;
  return null;
}

export function Pager({ offset, limit, total, onChange }) {
  const { t, fmt } = useApp();
  if (total === null || total === undefined) return null;
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(offset + limit, total);
  return html`<div class="pager">
    <span>${t('common.page', { from: fmt.number(from), to: fmt.number(to), total: fmt.number(total) })}</span>
    <button type="button" class="ghost" disabled=${offset <= 0} onClick=${() => onChange(Math.max(0, offset - limit))}>
      ‹ ${t('common.prev')}
    </button>
    <button type="button" class="ghost" disabled=${to >= total} onClick=${() => onChange(offset + limit)}>
      ${t('common.next')} ›
    </button>
  </div>`;
}

// --- JSON ---------------------------------------------------------------------------------------

const TOKEN = /("(?:\\u[a-fA-F0-9]{4}|\\[^u]|[^\\"])*"(?:\s*:)?|\b(?:true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;

function tokens(text) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(TOKEN)) {
    if (match.index > last) out.push(text.slice(last, match.index));
    const token = match[0];
    let kind = 'num';
    if (token.startsWith('"')) kind = token.trimEnd().endsWith(':') ? 'key' : 'str';
    else if (token === 'null') kind = 'null';
    else if (token === 'true' || token === 'false') kind = 'bool';
    out.push(html`<span class=${`j-${kind}`}>${token}</span>`);
    last = match.index + token.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** Pretty, coloured JSON (built as text nodes: nothing from a station is ever parsed as HTML). */
export function Json({ value, max = 200000 }) {
  const { t } = useApp();
  const [copied, setCopied] = useState(false);
  let text = value === undefined ? '' : JSON.stringify(value, null, 2);
  const truncated = text.length > max;
  if (truncated) text = `${text.slice(0, max)}\n…`;
  const copy = () =>
    navigator.clipboard?.writeText(JSON.stringify(value, null, 2)).then(() => {
      setCopied(true);
      setTimeout(() => setCopied(false), 1200);
    });
  return html`<div class="json">
    <button type="button" class="ghost small copy" onClick=${copy}>${copied ? t('common.copied') : t('common.copy')}</button>
    <pre>${tokens(text)}</pre>
  </div>`;
}

// --- virtual rows -------------------------------------------------------------------------------

/**
 * Renders only the rows in sight (plus a margin) of a long list with fixed row height, so a log
 * of thousands of frames scrolls like one of fifty. `rows` newest first; when rows arrive at the
 * top while the reader has scrolled down, the view stays on the rows they were reading.
 */
export function VirtualRows({ rows, rowHeight, renderRow, keyOf, className = '' }) {
  const box = useRef(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(400);
  const firstKey = useRef(null);

  useEffect(() => {
    const el = box.current;
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  useLayoutEffect(() => {
    const el = box.current;
    const key = rows.length ? keyOf(rows[0]) : null;
    const previous = firstKey.current;
    firstKey.current = key;
    if (previous === null || key === previous || el.scrollTop === 0) return;
    const moved = rows.findIndex((r) => keyOf(r) === previous);
    if (moved > 0) {
      el.scrollTop += moved * rowHeight;
      setTop(el.scrollTop);
    }
  }, [rows]);

  const overscan = 12;
  const first = Math.max(0, Math.floor(top / rowHeight) - overscan);
  const last = Math.min(rows.length, Math.ceil((top + height) / rowHeight) + overscan);
  const visible = [];
  for (let i = first; i < last; i += 1) visible.push(renderRow(rows[i], i));
  return html`<div class=${`vrows ${className}`} ref=${box} onScroll=${(e) => setTop(e.currentTarget.scrollTop)}>
    <div class="vrows-space" style=${{ height: `${rows.length * rowHeight}px` }}>
      <div class="vrows-slice" style=${{ transform: `translateY(${first * rowHeight}px)` }}>${visible}</div>
    </div>
  </div>`;
}
