// uPlot charts: throughput over time, and latency per action.
import { html, uPlot, useEffect, useMemo, useRef } from './lib.js';

const INK = '#475569';
const GRID = '#e2e8f0';
const axis = (extra = {}) => ({ stroke: INK, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID }, font: '11px system-ui', ...extra });

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
const two = (n) => String(n).padStart(2, '0');
const clock = (epoch) => {
  const d = new Date(epoch * 1000);
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
};

/** A uPlot instance in a box that follows the box's width; `make(width)` builds the options. */
function useChart(box, make, data, deps) {
  const chart = useRef(null);
  useEffect(() => {
    const el = box.current;
    chart.current = new uPlot(make(el.clientWidth || 600), data, el);
    const observer = new ResizeObserver(() => {
      if (chart.current && el.clientWidth) chart.current.setSize({ width: el.clientWidth, height: chart.current.height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      chart.current.destroy();
      chart.current = null;
    };
  }, deps);
  useEffect(() => {
    chart.current?.setData(data);
  }, [data]);
}

/** Messages/s (left axis) and average latency (right axis) over time. */
export function ThroughputChart({ points, labels, height = 220 }) {
  const box = useRef(null);
  const newest = points.length ? points[points.length - 1].at : 0;
  const data = useMemo(
    () => [points.map((p) => p.at), points.map((p) => p.messagesPerSecond), points.map((p) => p.avgLatencyMs)],
    [points.length, newest],
  );
  useChart(
    box,
    (width) => ({
      width,
      height,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, rate: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] }, ms: { range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.15)] } },
      series: [
        { label: labels.time, value: (u, v) => (v === null ? '–' : clock(v)) },
        { label: labels.rate, scale: 'rate', stroke: '#0f766e', width: 2, fill: 'rgba(15,118,110,0.08)', value: (u, v) => (v === null ? '–' : v.toFixed(1)) },
        { label: labels.latency, scale: 'ms', stroke: '#b45309', width: 1.5, dash: [4, 3], value: (u, v) => (v === null ? '–' : v.toFixed(1)) },
      ],
      axes: [axis({ incrs: TIME_STEPS, values: (u, splits) => splits.map(clock), space: 70 }), axis({ scale: 'rate', size: 50 }), axis({ scale: 'ms', side: 1, size: 50, grid: { show: false } })],
    }),
    data,
    [labels.rate, labels.latency, labels.time],
  );
  return html`<div class="chart" ref=${box}></div>`;
}

/** Nested bars per action: p99 (light, wide), p95, p50 (dark, narrow); x is the action's index. */
export function ActionLatencyChart({ rows, labels, height = 260 }) {
  const box = useRef(null);
  const names = rows.map((r) => r.action);
  const data = useMemo(() => [names.map((_, i) => i), rows.map((r) => r.p99Ms), rows.map((r) => r.p95Ms), rows.map((r) => r.p50Ms)], [rows]);
  const bars = (size) => uPlot.paths.bars({ size: [size, 60], align: 0 });
  useChart(
    box,
    (width) => ({
      width,
      height,
      legend: { live: true },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: { x: { time: false, range: (u, min, max) => [min - 0.6, max + 0.6] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [
        { label: labels.action, value: (u, v) => (v === null ? '–' : names[v] ?? '–') },
        { label: 'p99 ms', stroke: '#99f6e4', fill: '#99f6e4', paths: bars(0.7), points: { show: false } },
        { label: 'p95 ms', stroke: '#2dd4bf', fill: '#2dd4bf', paths: bars(0.5), points: { show: false } },
        { label: 'p50 ms', stroke: '#0f766e', fill: '#0f766e', paths: bars(0.3), points: { show: false } },
      ],
      axes: [
        axis({ splits: () => names.map((_, i) => i), values: (u, splits) => splits.map((i) => names[i] ?? ''), rotate: -30, size: 90, gap: 4, grid: { show: false } }),
        axis({ size: 50, label: 'ms', labelSize: 14 }),
      ],
    }),
    data,
    [names.join('|'), labels.action],
  );
  return html`<div class="chart" ref=${box}></div>`;
}

const SPAN_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200];
const hhmm = (epoch) => {
  const d = new Date(epoch * 1000);
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
};

/**
 * A device's power (kW, left axis) and, when it reports one, its vehicle's state of charge (%,
 * right axis) over time. Readings are a step function (a value holds until the next reading), so
 * the lines are drawn as steps. `points`: [{at: epoch s, powerW, socPct}], oldest first.
 */
export function PowerChart({ points, labels, from, to, height = 240 }) {
  const box = useRef(null);
  const span = useRef({ from, to });
  span.current = { from, to }; // read on every setData: the range slides without a new chart
  const withSoc = points.some((p) => p.socPct !== null && p.socPct !== undefined);
  const data = useMemo(() => {
    const series = [points.map((p) => p.at), points.map((p) => (p.powerW === null || p.powerW === undefined ? null : p.powerW / 1000))];
    if (withSoc) series.push(points.map((p) => p.socPct ?? null));
    return series;
  }, [points, withSoc]);
  const steps = uPlot.paths.stepped({ align: 1 });
  useChart(
    box,
    (width) => ({
      width,
      height,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: (u, min, max) => [span.current.from ?? min, span.current.to ?? max] },
        kw: { range: (u, min, max) => [Math.min(0, min ?? 0), Math.max(1, (max ?? 0) * 1.15)] },
        soc: { range: [0, 100] },
      },
      series: [
        { label: labels.time, value: (u, v) => (v === null ? '–' : clock(v)) },
        { label: labels.power, scale: 'kw', stroke: '#0f766e', width: 2, fill: 'rgba(15,118,110,0.10)', paths: steps, value: (u, v) => (v === null ? '–' : v.toFixed(2)) },
        ...(withSoc ? [{ label: labels.soc, scale: 'soc', stroke: '#7c3aed', width: 1.5, dash: [4, 3], paths: steps, points: { show: false }, value: (u, v) => (v === null ? '–' : v.toFixed(0)) }] : []),
      ],
      axes: [
        axis({ incrs: SPAN_STEPS, values: (u, splits, axisIdx, space, step) => splits.map(step < 60 ? clock : hhmm), space: 70 }),
        axis({ scale: 'kw', size: 50, label: 'kW', labelSize: 14 }),
        ...(withSoc ? [axis({ scale: 'soc', side: 1, size: 44, grid: { show: false }, label: '%', labelSize: 14 })] : []),
      ],
    }),
    data,
    [labels.power, labels.soc, labels.time, withSoc],
  );
  return html`<div class="chart" ref=${box}></div>`;
}
