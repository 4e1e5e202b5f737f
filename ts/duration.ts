/**
 * Go's duration syntax (`time.ParseDuration`), used by recipes (`poll_interval`) and the manager's
 * config: an optional sign, then number+unit pairs (`90m`, `1h30m`, `1.5h`); a bare `0` is allowed.
 * Results are milliseconds.
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const PAIR = /(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)/uy;
/** Go durations are int64 nanoseconds (about 292 years). */
const MAX_MS = 9_223_372_036_854.775;

export function parseDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    sign = s.startsWith('-') ? -1 : 1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  let at = 0;
  while (at < s.length) {
    PAIR.lastIndex = at;
    const m = PAIR.exec(s);
    if (!m || m[1] === '' || m[1] === '.') return undefined;
    total += Number(m[1]) * (UNIT_MS[m[2]!] ?? NaN);
    at = PAIR.lastIndex;
  }
  if (!Number.isFinite(total) || total > MAX_MS) return undefined;
  return sign * total;
}

/** `1h30m0s`-style text for messages and /status. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = rest / 1000;
  return `${sign}${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${Number(s.toFixed(3))}s`;
}
