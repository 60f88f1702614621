// Security events, newest first, a page at a time; new ones arrive from the security stream.
import { url, useResource, useStream } from '../api.js';
import { html, useEffect, useState } from '../lib.js';
import { Badge, Card, Field, Json, Notice, Pager, PageHead, StationLink, useApp } from '../ui.js';

const LIMIT = 50;

export function Security() {
  const { t, fmt } = useApp();
  const [draft, setDraft] = useState({ category: '', severity: '' });
  const [filter, setFilter] = useState(draft);
  const [offset, setOffset] = useState(0);
  const [open, setOpen] = useState(null);
  useEffect(() => {
    const timer = setTimeout(() => {
      setOffset(0);
      setFilter(draft);
    }, 350);
    return () => clearTimeout(timer);
  }, [draft.category, draft.severity]);
  const resource = useResource('/api/security', { ...filter, limit: LIMIT, offset }, { every: 30000 });
  const [rows, setRows] = useState([]);
  const [extra, setExtra] = useState(0);
  useEffect(() => {
    if (resource.data) {
      setRows(resource.data);
      setExtra(0);
    }
  }, [resource.data]);
  useStream(url('/api/security/stream', filter), 'security', (event) => {
    if (offset !== 0) return;
    setRows((r) => (r.some((x) => x.id === event.id) ? r : [event, ...r].slice(0, LIMIT)));
    setExtra((n) => n + 1);
  });
  const set = (name) => (e) => setDraft({ ...draft, [name]: e.currentTarget.value });
  const total = resource.total === null ? null : resource.total + extra;

  return html`
    <${PageHead} title=${t('security.title')} />
    <${Card}>
      <div class="toolbar">
        <${Field} label=${t('security.category')}>
          <input type="search" value=${draft.category} onInput=${set('category')} placeholder=${t('common.any')} aria-label=${t('security.category')} />
        </${Field}>
        <${Field} label=${t('security.severity')}>
          <select value=${draft.severity} onChange=${set('severity')} aria-label=${t('security.severity')}>
            <option value="">${t('common.all')}</option>
            ${['info', 'warning', 'critical'].map((s) => html`<option value=${s}>${s}</option>`)}
          </select>
        </${Field}>
        <span class="spacer"></span>
        <${Pager} offset=${offset} limit=${LIMIT} total=${total} onChange=${setOffset} />
      </div>
      <div class="table-wrap">
        <table class="grid" aria-label=${t('security.title')}>
          <thead>
            <tr><th>${t('common.time')}</th><th>${t('col.severity')}</th><th>${t('col.category')}</th><th>${t('col.identity')}</th><th>${t('col.message')}</th></tr>
          </thead>
          <tbody>
            ${rows.map(
              (e) => html`<tr key=${e.id} class="clickable" onClick=${() => setOpen(open === e.id ? null : e.id)}>
                  <td class="nowrap">${fmt.dateTime(e.timestamp)}</td>
                  <td><${Badge} value=${e.severity} /></td>
                  <td class="mono">${e.category}</td>
                  <td><${StationLink} id=${e.identity} /></td>
                  <td class="ellipsis">${e.message}</td>
                </tr>
                ${open === e.id && html`<tr class="expanded"><td colspan="5"><${Json} value=${e.details} /></td></tr>`}`,
            )}
          </tbody>
        </table>
      </div>
      <${Notice} error=${resource.error} loading=${resource.loading && !resource.data} empty=${resource.data && !rows.length} />
    </${Card}>
  `;
}
