// Streams and lag: each JetStream stream, its durable consumers, and how far this API's
// projection has read it.
import { useResource } from '../api.js';
import { html } from '../lib.js';
import { Badge, Card, Notice, PageHead, useApp } from '../ui.js';

function lagTone(lag) {
  if (lag === null || lag === undefined) return 'plain';
  if (lag === 0) return 'ok';
  return lag > 1000 ? 'bad' : 'warn';
}

function StreamCard({ stream }) {
  const { t, fmt } = useApp();
  const s = stream;
  const stat = (label, value) => html`<div class="stat"><span>${label}</span><b>${value}</b></div>`;
  return html`<${Card}
    title=${s.name}
    actions=${s.projectionLag !== null && html`<span class="muted small">${t('streams.lag')}</span> <${Badge} value=${String(s.projectionLag)} label=${fmt.number(s.projectionLag)} tone=${lagTone(s.projectionLag)} />`}
  >
    <div class="stats">
      ${stat(t('streams.messages'), fmt.number(s.messages))}
      ${stat(t('streams.bytes'), fmt.bytes(s.bytes))}
      ${stat(t('streams.seq'), `${fmt.number(s.firstSeq)} – ${fmt.number(s.lastSeq)}`)}
      ${stat(t('streams.projected'), s.projectedSeq === null ? '–' : fmt.number(s.projectedSeq))}
    </div>
    <p class="muted small mono">${t('streams.subjects')}: ${s.subjects.join(', ')}</p>
    ${s.consumers.length > 0 &&
    html`<table class="grid compact" aria-label=${`${s.name} ${t('streams.consumers')}`}>
      <thead>
        <tr>
          <th>${t('col.consumer')}</th><th class="num">${t('col.numPending')}</th><th class="num">${t('col.ackPending')}</th>
          <th class="num">${t('col.redelivered')}</th><th class="num">${t('col.deliveredSeq')}</th>
        </tr>
      </thead>
      <tbody>
        ${s.consumers.map(
          (c) => html`<tr key=${c.name}>
            <td class="mono">${c.name}</td>
            <td class="num"><${Badge} value=${String(c.numPending)} label=${fmt.number(c.numPending)} tone=${lagTone(c.numPending)} /></td>
            <td class="num">${fmt.number(c.numAckPending)}</td>
            <td class=${`num ${c.numRedelivered ? 'warn-text' : ''}`}>${fmt.number(c.numRedelivered)}</td>
            <td class="num mono">${fmt.number(c.deliveredSeq)}</td>
          </tr>`,
        )}
      </tbody>
    </table>`}
  </${Card}>`;
}

export function Streams() {
  const { t } = useApp();
  const resource = useResource('/api/streams', null, { every: 3000 });
  return html`
    <${PageHead} title=${t('streams.title')} />
    <div class="stream-cards">${(resource.data || []).map((s) => html`<${StreamCard} key=${s.name} stream=${s} />`)}</div>
    <${Notice} error=${resource.error} loading=${resource.loading && !resource.data} empty=${resource.data && !resource.data.length} />
  `;
}
