// Numbers, sizes, times and durations in the chosen language. Times show in the browser's zone.

const pad = (n, width = 2) => String(n).padStart(width, '0');

export function formatter(lang) {
  const locale = lang === 'de' ? 'de-DE' : 'en-GB';
  const numbers = new Map();
  const relative = new Intl.RelativeTimeFormat(locale, { numeric: 'always', style: 'long' });

  const number = (value, digits = 0) => {
    if (value === null || value === undefined || Number.isNaN(value)) return '–';
    let nf = numbers.get(digits);
    if (!nf) {
      nf = new Intl.NumberFormat(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits });
      numbers.set(digits, nf);
    }
    return nf.format(value);
  };

  const date = (iso) => (iso ? new Date(iso) : null);

  return {
    locale,
    number,
    ms: (value) => (value === null || value === undefined ? '–' : `${number(value, value < 10 ? 1 : 0)} ms`),
    percent: (ratio) => (ratio === null || ratio === undefined ? '–' : `${number(ratio * 100, 2)} %`),
    bytes(value) {
      if (value === null || value === undefined) return '–';
      const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let i = 0;
      while (value >= 1024 && i < units.length - 1) {
        value /= 1024;
        i += 1;
      }
      return `${number(value, i === 0 ? 0 : 1)} ${units[i]}`;
    },
    energy: (wh) => (wh === null || wh === undefined ? '–' : `${number(wh / 1000, 2)} kWh`),
    /** 850 W, 3,70 kW (a device's power; negative for export where a meter says so). */
    power(w) {
      if (w === null || w === undefined) return '–';
      return Math.abs(w) >= 1000 ? `${number(w / 1000, 2)} kW` : `${number(w, 0)} W`;
    },
    /** A measured value with its unit: unit(16, 'A', 1) → 16.0 A; unset → –. */
    unit: (value, unit, digits = 0) => (value === null || value === undefined ? '–' : `${number(value, digits)} ${unit}`),
    /** 2026-11-21 14:05:03 in local time. */
    dateTime(iso) {
      const d = date(iso);
      if (!d || Number.isNaN(d.getTime())) return '–';
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(
        d.getMinutes(),
      )}:${pad(d.getSeconds())}`;
    },
    /** 14:05:03.123 in local time, for the message log. */
    clock(iso) {
      const d = date(iso);
      if (!d || Number.isNaN(d.getTime())) return '–';
      return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
    },
    /** 3 min 12 s, 2 h 5 min, 4 d 3 h */
    duration(seconds) {
      if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '–';
      const s = Math.max(0, Math.round(seconds));
      if (s < 60) return `${s} s`;
      const two = (big, bigUnit, small, smallUnit) => (small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`);
      if (s < 3600) return two(Math.floor(s / 60), 'min', s % 60, 's');
      if (s < 86400) return two(Math.floor(s / 3600), 'h', Math.floor((s % 3600) / 60), 'min');
      return two(Math.floor(s / 86400), 'd', Math.floor((s % 86400) / 3600), 'h');
    },
    /** "3 min ago" / "vor 3 Min." */
    ago(iso) {
      const d = date(iso);
      if (!d || Number.isNaN(d.getTime())) return '–';
      const s = (d.getTime() - Date.now()) / 1000;
      const abs = Math.abs(s);
      if (abs < 60) return relative.format(Math.round(s), 'second');
      if (abs < 3600) return relative.format(Math.round(s / 60), 'minute');
      if (abs < 86400) return relative.format(Math.round(s / 3600), 'hour');
      return relative.format(Math.round(s / 86400), 'day');
    },
    between(startIso, endIso) {
      const a = date(startIso);
      if (!a) return null;
      const b = endIso ? date(endIso) : new Date();
      return (b.getTime() - a.getTime()) / 1000;
    },
  };
}
