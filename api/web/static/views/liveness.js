// Liveness: each station's last sign of life against its threshold. The API answers one snapshot
// of every station; the page shows it a hundred rows at a time.
import { useResource } from '../api.js';
import { html, useEffect, useMemo, useState } from '../lib.js';
import { Badge, Card, Field, Notice, Pager, PageHead, StationLink, useApp } from '../ui.js';

const LIMIT = 100;

export function Liveness() {
  const { t, fmt } = useApp();
  const [draft, setDraft] = useState('');
  const [threshold, setThreshold] = useState('');
  const [sort, setSort] = useState('silence');
  const [show, setShow] = useState('all');
  const [offset, setOffset] = useState(0);
  useEffect(() => {
    const timer = setTimeout(() => setThreshold(/^\d+(\.\d+)?$/.test(draft) && Number(draft) > 0 ? draft : ''), 400);
    return () => clearTimeout(timer);
  }, [draft]);
  const resource = useResource('/api/liveness', { threshold, sort }, { every: 15000 });
  const stations = resource.data?.stations || [];
  const counts = useMemo(
    () => ({
      total: stations.length,
      alive: stations.filter((s) => s.status === 'alive').length,
      silent: stations.filter((s) => s.status === 'silent').length,
      offline: stations.filter((s) => !s.online).length,
    }),
    [stations],
  );
  const shown = useMemo(() => (show === 'all' ? stations : stations.filter((s) => s.status === show)), [stations, show]);
  useEffect(() => setOffset(0), [show, sort, threshold]);
  const page = shown.slice(offset, offset + LIMIT);

  return html`
    <${PageHead} title=${t('liveness.title')} />
    <div class="tiles small">
      <div class="tile"><span class="tile-label">${t('liveness.total')}</span><b class="tile-value">${fmt.number(counts.total)}</b></div>
      <div class="tile ok"><span class="tile-label">${t('liveness.alive')}</span><b class="tile-value">${fmt.number(counts.alive)}</b></div>
      <div class=${`tile ${counts.silent ? 'warn' : ''}`}><span class="tile-label">${t('liveness.silent')}</span><b class="tile-value">${fmt.number(counts.silent)}</b></div>
      <div class="tile"><span class="tile-label">${t('liveness.offline')}</span><b class="tile-value">${fmt.number(counts.offline)}</b></div>
    </div>
    <${Card}>
      <div class="toolbar">
        <${Field} label=${t('liveness.threshold')}>
          <input type="number" min="1" step="1" value=${draft} onInput=${(e) => setDraft(e.currentTarget.value)} aria-label=${t('liveness.threshold')} />
        </${Field}>
        <${Field} label=${t('liveness.sort')}>
          <select value=${sort} onChange=${(e) => setSort(e.currentTarget.value)} aria-label=${t('liveness.sort')}>
            ${['silence', 'identity', 'lastSeen'].map((s) => html`<option value=${s}>${t(`liveness.sort.${s}`)}</option>`)}
          </select>
        </${Field}>
        <${Field} label=${t('liveness.show')}>
          <select value=${show} onChange=${(e) => setShow(e.currentTarget.value)} aria-label=${t('liveness.show')}>
            <option value="all">${t('common.all')}</option>
            <option value="alive">${t('status.alive')}</option>
            <option value="silent">${t('status.silent')}</option>
          </select>
        </${Field}>
        <span class="spacer"></span>
        <${Pager} offset=${offset} limit=${LIMIT} total=${resource.data ? shown.length : null} onChange=${setOffset} />
      </div>
      <div class="table-wrap">
        <table class="grid" aria-label=${t('liveness.title')}>
          <thead>
            <tr>
              <th>${t('col.identity')}</th><th>${t('col.status')}</th><th>${t('status.online')}</th><th>${t('col.lastSeen')}</th>
              <th class="num">${t('col.silence')}</th><th class="num">${t('col.threshold')}</th>
            </tr>
          </thead>
          <tbody>
            ${page.map(
              (s) => html`<tr key=${s.identity}>
                <td><${StationLink} id=${s.identity} /></td>
                <td><${Badge} value=${s.status} label=${t(`status.${s.status}`)} /></td>
                <td><${Badge} value=${s.online ? 'online' : 'offline'} label=${t(s.online ? 'status.online' : 'status.offline')} /></td>
                <td class="nowrap">${fmt.dateTime(s.lastSeenAt)}</td>
                <td class="num nowrap">${fmt.duration(s.secondsSinceSeen)}</td>
                <td class="num nowrap">${fmt.duration(s.thresholdSeconds)}</td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>
      <${Notice} error=${resource.error} loading=${resource.loading && !resource.data} empty=${resource.data && !shown.length} />
    </${Card}>
  `;
}
