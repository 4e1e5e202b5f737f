/**
 * Build timestamps. Producers accept only `YYYY-MM-DDTHH:MM:SSZ` (DECISIONS.md, Package format 3):
 * fractional seconds and offsets make the reference write PAX mtime records that break signatures.
 * The tar mtime field holds 11 octal digits, so the latest instant is 2242-03-16T12:56:31Z.
 */

const WHOLE_SECONDS_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
/** RFC 3339 in UTC with optional fractional seconds: what a verifier accepts in a manifest. */
const RFC3339_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$/;
const MAX_MTIME = 8 ** 11 - 1;

function seconds(match: RegExpExecArray): number | undefined {
  const [y, mo, d, h, mi, s] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  const exact =
    back.getUTCFullYear() === y &&
    back.getUTCMonth() === mo - 1 &&
    back.getUTCDate() === d &&
    back.getUTCHours() === h &&
    back.getUTCMinutes() === mi &&
    back.getUTCSeconds() === s;
  return exact ? ms / 1000 : undefined;
}

/** Why `text` is not a producer timestamp, or undefined when it is one. */
export function timestampProblem(text: string): string | undefined {
  const match = WHOLE_SECONDS_UTC.exec(text);
  if (!match) return `timestamp "${text}" must be YYYY-MM-DDTHH:MM:SSZ (UTC, whole seconds)`;
  const secs = seconds(match);
  if (secs === undefined) return `timestamp "${text}" is not a valid date and time`;
  if (secs < 0 || secs > MAX_MTIME) return `timestamp "${text}" must lie between 1970 and 2242`;
  return undefined;
}

/** Unix seconds of a producer timestamp; call `timestampProblem` first. */
export function timestampSeconds(text: string): number {
  const match = WHOLE_SECONDS_UTC.exec(text);
  const secs = match ? seconds(match) : undefined;
  if (secs === undefined || timestampProblem(text) !== undefined) {
    throw new RangeError(`not a producer timestamp: ${text}`);
  }
  return secs;
}

/** Whether a manifest timestamp is RFC 3339 UTC (fractions allowed), as the reference reader requires. */
export function isRfc3339Utc(text: string): boolean {
  const match = RFC3339_UTC.exec(text);
  return match !== null && seconds(match) !== undefined;
}

/** `YYYY-MM-DDTHH:MM:SSZ` of a Date, truncated to whole seconds. */
export function formatTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}
