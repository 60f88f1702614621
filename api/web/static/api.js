// Talking to the evbus API: JSON requests with the session cookie, and the SSE streams.
import { useCallback, useEffect, useRef, useState } from './lib.js';

export class ApiError extends Error {
  constructor(status, error, detail) {
    super(error || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

let unauthorized = () => {};
/** Called whenever the API answers 401: the app goes back to the login form. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function url(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== '') query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export async function request(method, path, { params, body } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url(path, params), init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (response.status === 401 && !path.startsWith('/api/auth/')) unauthorized();
  if (!response.ok) {
    const error = data && typeof data === 'object' ? data.error : String(data || response.statusText);
    throw new ApiError(response.status, error, data && typeof data === 'object' ? data.detail : undefined);
  }
  const total = response.headers.get('X-Total-Count');
  return { data, total: total === null ? null : Number(total), status: response.status };
}

export const get = (path, params) => request('GET', path, { params });
export const post = (path, body, params) => request('POST', path, { body, params });

/**
 * GET `path` with `params`, again whenever they change, on reload(), and every `every` ms.
 * Returns {data, total, error, loading, reload}; the previous data stays while the next loads.
 */
export function useResource(path, params, { every = 0, enabled = true } = {}) {
  const key = path ? url(path, params) : null;
  const [state, setState] = useState({ data: null, total: null, error: null, loading: Boolean(key) });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  useEffect(() => {
    if (!key || !enabled) return undefined;
    let cancelled = false;
    setState((s) => ({ ...s, loading: true }));
    get(key)
      .then(({ data, total }) => !cancelled && setState({ data, total, error: null, loading: false }))
      .catch((error) => !cancelled && setState((s) => ({ ...s, error, loading: false })));
    return () => {
      cancelled = true;
    };
  }, [key, tick, enabled]);
  useEffect(() => {
    if (!every || !enabled) return undefined;
    const timer = setInterval(() => document.visibilityState === 'visible' && reload(), every);
    return () => clearInterval(timer);
  }, [every, reload, enabled]);
  return { ...state, reload };
}

/** Call `fn` at most once per `ms` (the last call wins), e.g. a reload after a burst of events. */
export function useDebounced(fn, ms) {
  const latest = useRef(fn);
  latest.current = fn;
  const timer = useRef(null);
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      latest.current();
    }, ms);
  }, [ms]);
}

// --- live streams -------------------------------------------------------------------------------
//
// One EventSource per stream URL, shared by every component that listens to it. The browser
// reconnects by itself after the server ends a stream (after `overflow`, too) and sends
// Last-Event-ID, so nothing is missed. An HTTP error (401, 429, 503) closes the EventSource for
// good: then we ask whether the session still holds, and open a new one a few seconds later.

const RETRY_MS = 3000;
const feeds = new Map();
const watchers = new Set();

function notify() {
  for (const watcher of watchers) watcher();
}

class Feed {
  constructor(path) {
    this.path = path;
    this.handlers = new Map(); // event name -> Set of functions
    this.users = 0;
    this.state = 'connecting';
    this.overflowed = false;
    this.open();
  }

  open() {
    this.source = new EventSource(this.path);
    this.source.addEventListener('connected', () => this.setState('open'));
    this.source.addEventListener('overflow', () => {
      this.overflowed = true;
      this.setState('connecting');
    });
    this.source.addEventListener('error', () => this.failed());
    for (const name of this.handlers.keys()) this.listen(name);
  }

  listen(name) {
    this.source.addEventListener(name, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (this.state !== 'open') this.setState('open');
      for (const handler of this.handlers.get(name) || []) handler(data, event);
    });
  }

  on(name, handler) {
    if (!this.handlers.has(name)) {
      this.handlers.set(name, new Set());
      this.listen(name);
    }
    this.handlers.get(name).add(handler);
    return () => this.handlers.get(name).delete(handler);
  }

  setState(state) {
    if (state === 'open') this.overflowed = false;
    if (state !== this.state) {
      this.state = state;
      notify();
    }
  }

  failed() {
    if (this.source.readyState !== EventSource.CLOSED) {
      this.setState('connecting'); // the browser retries by itself
      return;
    }
    this.setState('down');
    get('/api/telemetry').catch(() => {}); // a 401 here sends the app back to the login form
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.users > 0 && this.open(), RETRY_MS);
  }

  close() {
    clearTimeout(this.retry);
    this.source.close();
  }
}

function acquire(path) {
  let feed = feeds.get(path);
  if (!feed) {
    feed = new Feed(path);
    feeds.set(path, feed);
    notify();
  }
  feed.users += 1;
  return feed;
}

function release(feed) {
  feed.users -= 1;
  if (feed.users <= 0) {
    feed.close();
    if (feeds.get(feed.path) === feed) feeds.delete(feed.path);
    notify();
  }
}

/** Listen to `event` on the stream at `path` while mounted; returns the stream's state. */
export function useStream(path, event, handler) {
  const latest = useRef(handler);
  latest.current = handler;
  const [state, setState] = useState('connecting');
  useEffect(() => {
    if (!path) return undefined;
    const feed = acquire(path);
    const off = feed.on(event, (data, raw) => latest.current(data, raw));
    const watch = () => setState(feed.overflowed ? 'overflow' : feed.state);
    watchers.add(watch);
    watch();
    return () => {
      watchers.delete(watch);
      off();
      release(feed);
    };
  }, [path, event]);
  return state;
}

/**
 * Like useStream, but hands `flush` every event of one animation frame at once (oldest first):
 * a busy stream then costs one render per frame, not one per event.
 */
export function useStreamBatches(path, event, flush) {
  const batch = useRef([]);
  const latest = useRef(flush);
  latest.current = flush;
  const frame = useRef(0);
  useEffect(() => () => cancelAnimationFrame(frame.current), []);
  return useStream(path, event, (data) => {
    batch.current.push(data);
    if (batch.current.length > 1) return;
    frame.current = requestAnimationFrame(() => {
      const items = batch.current;
      batch.current = [];
      latest.current(items);
    });
  });
}

/** The worst state of all open streams, for the header's live indicator. */
export function useLiveState() {
  const [state, setState] = useState('connecting');
  useEffect(() => {
    const watch = () => {
      const states = [...feeds.values()].map((f) => (f.overflowed ? 'overflow' : f.state));
      const order = ['down', 'overflow', 'connecting', 'open'];
      setState(states.length ? order.find((s) => states.includes(s)) : 'open');
    };
    watchers.add(watch);
    watch();
    return () => watchers.delete(watch);
  }, []);
  return state;
}
