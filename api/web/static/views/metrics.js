// Action metrics: per action and direction, count, errors, timeouts and latency percentiles,
// with a chart of p50/p95/p99 for the busiest actions of one direction.
import { useResource } from '../api.js';
import { ActionLatencyChart } from '../charts.js';
import { html, useEffect, useMemo, useState } from '../lib.js';
import { Card, Field, Notice, PageHead, useApp } from '../ui.js';
import { MessageDirection } from './messages.js';

const CHART_ACTIONS = 16;

export function Metrics() {
  const { t, fmt } = useApp();
  const [direction, setDirection] = useState('IN');
  const [draft, setDraft] = useState('');
  const [identity, setIdentity] = useState('');
  useEffect(() => {
    const timer = setTimeout(() => setIdentity(draft.trim()), 400);
    return () => clearTimeout(timer);
  }, [draft]);
  const resource = useResource('/api/metrics/actions', { identity }, { every: 10000 });
  const rows = resource.data || [];
  const charted = useMemo(
    () => rows.filter((r) => r.direction === direction && r.p50Ms !== null).sort((a, b) => b.count - a.count).slice(0, CHART_ACTIONS),
    [rows, direction],
  );
  const labels = useMemo(() => ({ action: t('col.action') }), [t]);
  const ms = (v) => (v === null || v === undefined ? '–' : fmt.number(v, v < 10 ? 1 : 0));

  return html`
    <${PageHead} title=${t('metrics.title')}>
      <${Field} label=${t('metrics.scope')}>
        <input type="search" value=${draft} onInput=${(e) => setDraft(e.currentTarget.value)} placeholder=${t('common.any')} aria-label=${t('metrics.scope')} />
      </${Field}>
    </${PageHead}>
    <${Card}
      title=${t('metrics.chart')}
      actions=${html`<div class="segmented">
        ${['IN', 'OUT'].map(
          (d) => html`<button type="button" class=${direction === d ? 'on' : ''} aria-pressed=${direction === d} onClick=${() => setDirection(d)}>
            ${t(d === 'IN' ? 'metrics.in' : 'metrics.out')}
          </button>`,
        )}
      </div>`}
    >
      ${charted.length ? html`<${ActionLatencyChart} key=${direction} rows=${charted} labels=${labels} />` : html`<p class="notice chart-wait">${t('common.none')}</p>`}
    </${Card}>
    <${Card}>
      <div class="table-wrap">
        <table class="grid" aria-label=${t('metrics.title')}>
          <thead>
            <tr>
              <th>${t('col.action')}</th><th>${t('col.dir')}</th><th class="num">${t('col.count')}</th><th class="num">${t('col.answered')}</th>
              <th class="num">${t('col.errors')}</th><th class="num">${t('col.timeouts')}</th><th class="num">${t('col.pending')}</th>
              <th class="num">${t('col.avg')}</th><th class="num">${t('col.p50')}</th><th class="num">${t('col.p95')}</th>
              <th class="num">${t('col.p99')}</th><th class="num">${t('col.max')}</th>
            </tr>
          </thead>
          <tbody>
            ${rows.map(
              (r) => html`<tr key=${`${r.action}:${r.direction}`}>
                <td>${r.action}</td>
                <td><${MessageDirection} value=${r.direction} /></td>
                <td class="num">${fmt.number(r.count)}</td>
                <td class="num">${fmt.number(r.answered)}</td>
                <td class=${`num ${r.errors ? 'bad-text' : ''}`}>${fmt.number(r.errors)}</td>
                <td class=${`num ${r.timeouts ? 'warn-text' : ''}`}>${fmt.number(r.timeouts)}</td>
                <td class="num">${fmt.number(r.pending)}</td>
                <td class="num mono">${ms(r.avgMs)}</td>
                <td class="num mono">${ms(r.p50Ms)}</td>
                <td class="num mono">${ms(r.p95Ms)}</td>
                <td class="num mono">${ms(r.p99Ms)}</td>
                <td class="num mono">${ms(r.maxMs)}</td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>
      <${Notice} error=${resource.error} loading=${resource.loading && !resource.data} empty=${resource.data && !rows.length} />
    </${Card}>
  `;
}
