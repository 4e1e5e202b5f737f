/**
 * A build's log as Server-Sent Events (`GET /builds/<id>/log/stream`), for the dashboard: one
 * `line` event per log line as the build writes it, then one `end` event naming the build's state
 * once it has finished and everything it wrote has been sent. The log file is the source (the
 * build writes it; this only reads), so any number of viewers cost no memory in the build and a
 * viewer that connects late gets the lines it missed. Each event's id is the byte offset after its
 * line: a browser that reconnects sends it back (`Last-Event-ID`) and resumes there.
 */

import { open, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A viewer joining a long log starts this far from its end (the whole log is one link away). */
const BACKLOG_BYTES = 64 * 1024;
const READ_BYTES = 64 * 1024;
const POLL_MS = 250;
/** A finished build's log is ended only after it has stayed quiet this long (its last lines are flushed after the state changes). */
const SETTLE_MS = 1_000;
const HEARTBEAT_MS = 15_000;

export interface LogSource {
  path: string;
  /** The build's state now; the stream ends once it is no longer queued or running and the file stops growing. */
  state(): string | undefined;
  /** Where the whole log is (named when the stream starts past its beginning). */
  fullLogUrl: string;
}

const live = (state: string | undefined): boolean => state === 'queued' || state === 'running';

/** One SSE event; `data` must not contain a line break. */
const event = (name: string, data: string, id?: number): string => `${id === undefined ? '' : `id: ${id}\n`}event: ${name}\ndata: ${data}\n\n`;

/** Streams `source` to `res` until the build ends or the viewer goes away. */
export async function streamLog(req: IncomingMessage, res: ServerResponse, source: LogSource): Promise<void> {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write('retry: 2000\n\n');
  let closed = false;
  // The viewer going away ends the response at once (its place among the viewers is given back):
  // either side's close stops the reading and cuts the wait for more output short.
  let wake: () => void = () => undefined;
  const onClose = (): void => {
    closed = true;
    wake();
  };
  req.once('close', onClose);
  res.once('close', onClose);
  const pause = (): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, POLL_MS);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  let file: FileHandle | undefined;
  try {
    const resumeAt = Number(req.headers['last-event-id']);
    /** Where the next read starts; undefined until the file exists. */
    let offset = Number.isSafeInteger(resumeAt) && resumeAt >= 0 ? resumeAt : undefined;
    /** Bytes after the last line break sent, and where they start in the file. */
    let pending = Buffer.alloc(0);
    let dropFirstLine = false;
    let quietSince: number | undefined;
    const buffer = Buffer.alloc(READ_BYTES);
    // A viewer that stops reading holds the loop here, until it reads again or goes away.
    const send = async (text: string): Promise<void> => {
      if (text === '' || closed || res.write(text)) return;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.once('drain', done);
        res.once('close', done);
      });
    };
    const lineEvent = (bytes: Buffer, endOffset: number): string => event('line', bytes.toString('utf8').replace(/[\r\n]/g, ''), endOffset);
    while (!closed) {
      file ??= await open(source.path, 'r').catch(() => undefined);
      if (file && offset === undefined) {
        const { size } = await file.stat();
        offset = Math.max(0, size - BACKLOG_BYTES);
        if (offset > 0) {
          dropFirstLine = true;
          await send(event('skipped', `${offset} earlier bytes are not shown here; the whole log is at ${source.fullLogUrl}`));
        }
      }
      const { bytesRead } = file && offset !== undefined ? await file.read(buffer, 0, READ_BYTES, offset) : { bytesRead: 0 };
      if (bytesRead > 0 && offset !== undefined) {
        quietSince = undefined;
        const data = Buffer.concat([pending, buffer.subarray(0, bytesRead)]);
        const dataStart = offset - pending.length;
        offset += bytesRead;
        let out = '';
        let from = 0;
        for (let newline = data.indexOf(10); newline !== -1; newline = data.indexOf(10, from)) {
          // A line break never occurs inside a UTF-8 sequence, so each line decodes on its own.
          if (!dropFirstLine) out += lineEvent(data.subarray(from, newline), dataStart + newline + 1);
          dropFirstLine = false;
          from = newline + 1;
        }
        pending = data.subarray(from);
        // A build that never ends its line must not make this hold its output: send it in pieces.
        if (pending.length >= READ_BYTES) {
          if (!dropFirstLine) out += lineEvent(pending, offset);
          pending = Buffer.alloc(0);
        }
        await send(out);
        continue;
      }
      const state = source.state();
      if (!live(state)) {
        quietSince ??= Date.now();
        if (Date.now() - quietSince >= SETTLE_MS) {
          if (pending.length > 0 && !dropFirstLine && offset !== undefined) await send(lineEvent(pending, offset));
          await send(event('end', state ?? 'unknown'));
          break;
        }
      }
      if (!closed) await pause();
    }
  } finally {
    clearInterval(heartbeat);
    await file?.close();
    res.end();
  }
}
