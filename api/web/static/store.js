// What the global streams brought since sign-in: telemetry points (header, overview chart) and the
// latest connection/command/transaction events (overview's activity list).

const TELEMETRY_POINTS = 450; // 15 min at one point per 2 s
const EVENTS = 100;

const watchers = new Set();
let scheduled = false;

function changed() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    for (const watcher of watchers) watcher();
  });
}

export const liveStore = {
  telemetry: [], // {at: epoch s, ...GET /api/telemetry}
  events: [], // newest first, {kind, name, identity, timestamp, body}

  addTelemetry(point) {
    this.telemetry.push({ at: Date.now() / 1000, ...point });
    if (this.telemetry.length > TELEMETRY_POINTS) this.telemetry.splice(0, this.telemetry.length - TELEMETRY_POINTS);
    changed();
  },

  addEvent(event) {
    this.events.unshift(event);
    if (this.events.length > EVENTS) this.events.length = EVENTS;
    changed();
  },

  /** Events from before sign-in (read from the REST lists), when none have arrived live yet. */
  seedEvents(events) {
    if (this.events.length) return;
    this.events = events.slice(0, EVENTS);
    changed();
  },

  /** Call `fn` (at most once a frame) after new data; returns the function that stops it. */
  watch(fn) {
    watchers.add(fn);
    return () => watchers.delete(fn);
  },

  reset() {
    this.telemetry = [];
    this.events = [];
    changed();
  },
};
