/**
 * Structured logs for the daemon: one event per line on stderr, with the reference's `msg` texts
 * and field names (D-26). pino does the logging; this module only chooses the line format:
 * logfmt by default — `time=… level=error msg="build failed" recipe=hello …`, the shape the
 * monitoring docs alert on — or JSON (`--log-format json`).
 */

import { pino, type Logger as PinoLogger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'logfmt' | 'json';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every event (e.g. the job id). */
  child(fields: LogFields): Logger;
}

/** A logfmt value: bare when it is safe, otherwise quoted with `"` and `\` escaped. */
function logfmtValue(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? 'null';
  if (text !== '' && !/[\s="\\]/.test(text) && !/[\u0000-\u001f\u007f]/.test(text)) return text;
  return JSON.stringify(text);
}

/** pino writes one JSON object per line; this turns each into logfmt, `time level msg` first. */
function logfmtStream(out: NodeJS.WritableStream): { write(line: string): void } {
  return {
    write(line: string): void {
      const event = JSON.parse(line) as Record<string, unknown>;
      const { time, level, msg, ...rest } = event;
      const parts = [`time=${logfmtValue(time)}`, `level=${logfmtValue(level)}`, `msg=${logfmtValue(msg)}`];
      for (const [key, value] of Object.entries(rest)) if (value !== undefined) parts.push(`${key}=${logfmtValue(value)}`);
      out.write(`${parts.join(' ')}\n`);
    },
  };
}

function wrap(p: PinoLogger): Logger {
  return {
    debug: (msg, fields) => p.debug(fields ?? {}, msg),
    info: (msg, fields) => p.info(fields ?? {}, msg),
    warn: (msg, fields) => p.warn(fields ?? {}, msg),
    error: (msg, fields) => p.error(fields ?? {}, msg),
    child: (fields) => wrap(p.child(fields)),
  };
}

export function createLogger(options: { level: LogLevel; format: LogFormat; out?: NodeJS.WritableStream }): Logger {
  const out = options.out ?? process.stderr;
  const destination = options.format === 'json' ? { write: (line: string) => void out.write(line) } : logfmtStream(out);
  return wrap(
    pino(
      {
        level: options.level,
        base: undefined,
        messageKey: 'msg',
        timestamp: () => `,"time":"${new Date().toISOString()}"`,
        formatters: { level: (label) => ({ level: label }) },
      },
      destination,
    ),
  );
}
