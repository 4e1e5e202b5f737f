/**
 * HTTP/1.1 requests written byte by byte over their own TCP connection, for what fetch hides:
 * a body streamed (or held back) at the test's pace, chunked or with any Content-Length, and
 * whether the server closed the connection — and how much of the body it let through first.
 */

import { connect, type Socket } from 'node:net';

export interface RawReply {
  /** The response's status, when one arrived. */
  status: number | undefined;
  /** Response head and body as text. */
  text: string;
  /** The server closed (or reset) the connection before `waitMs` passed. */
  closed: boolean;
  /** Body bytes the client managed to write. */
  sent: number;
  /** Milliseconds from connecting to the first response byte. */
  firstByteMs: number | undefined;
}

export interface RawRequest {
  port: number;
  method?: string;
  path?: string;
  headers: Record<string, string>;
  /** Writes the body; `write` resolves false once the connection is gone. */
  send?: (write: (chunk: Buffer | string) => Promise<boolean>) => Promise<void>;
  /** Give up (and close from this side) after this long. */
  waitMs?: number;
}

export function rawRequest(request: RawRequest): Promise<RawReply> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket: Socket = connect(request.port, '127.0.0.1');
    let text = '';
    let sent = 0;
    let firstByteMs: number | undefined;
    let gone = false;
    let settled = false;
    const settle = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
      resolve({ status: m ? Number(m[1]) : undefined, text, closed, sent, firstByteMs });
    };
    const timer = setTimeout(() => settle(false), request.waitMs ?? 10_000);
    socket.on('data', (d: Buffer) => {
      firstByteMs ??= Date.now() - started;
      text += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      gone = true;
      settle(true);
    });
    const write = (chunk: Buffer | string): Promise<boolean> =>
      new Promise((done) => {
        if (gone || socket.destroyed) return done(false);
        const length = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
        const flushed = socket.write(chunk, (error) => {
          if (!error) sent += length;
        });
        if (flushed) return done(true);
        const onDrain = (): void => {
          socket.off('close', onClose);
          done(true);
        };
        const onClose = (): void => {
          socket.off('drain', onDrain);
          done(false);
        };
        socket.once('drain', onDrain);
        socket.once('close', onClose);
      });
    socket.once('connect', () => {
      const head = [`${request.method ?? 'POST'} ${request.path ?? '/webhooks/github'} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(request.headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
      socket.write(head);
      if (request.send) void request.send(write);
    });
  });
}

/** Writes `total` bytes (in 64 KiB pieces, as HTTP chunks when `chunked`) unless the connection goes first. */
export function streamBody(total: number, chunked: boolean): (write: (chunk: Buffer | string) => Promise<boolean>) => Promise<void> {
  const piece = Buffer.alloc(64 * 1024, 0x61);
  return async (write) => {
    for (let left = total; left > 0; left -= piece.length) {
      const part = left >= piece.length ? piece : piece.subarray(0, left);
      if (!(await write(chunked ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]) : part))) return;
    }
    if (chunked) await write('0\r\n\r\n');
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
