/**
 * A build's log file (D-25): every step of a job streams its output into one `BuildLog`, which
 * writes it to disk as it arrives and never holds more than a fixed amount in memory, however much
 * a build prints. Past `headBytes`, output is kept only as a rolling tail of `tailBytes`; when the
 * log closes, a line saying how much was dropped is written, then the tail. The first lines (what
 * the build did) and the last ones (why it failed) survive; a build's result never depends on how
 * verbose it is. Every line starts with the time it arrived (RFC 3339, milliseconds), so a slow
 * step shows where its time went.
 */

import { createWriteStream, type WriteStream } from 'node:fs';
import { Writable } from 'node:stream';

export const LOG_HEAD_BYTES = 16 * 1024 * 1024;
export const LOG_TAIL_BYTES = 4 * 1024 * 1024;
/** How much of the latest output is kept for error messages. */
const RECENT_BYTES = 4096;

export interface BuildLogLimits {
  headBytes: number;
  tailBytes: number;
}

/** The last `capacity` bytes written, in order. */
export class ByteRing {
  private readonly buffer: Buffer;
  private start = 0;
  private length = 0;
  /** Bytes pushed out of the ring so far. */
  dropped = 0;

  constructor(private readonly capacity: number) {
    this.buffer = Buffer.alloc(capacity);
  }

  push(chunk: Buffer): void {
    if (this.capacity === 0) {
      this.dropped += chunk.length;
      return;
    }
    if (chunk.length >= this.capacity) {
      this.dropped += this.length + chunk.length - this.capacity;
      chunk.copy(this.buffer, 0, chunk.length - this.capacity);
      this.start = 0;
      this.length = this.capacity;
      return;
    }
    const overflow = Math.max(0, this.length + chunk.length - this.capacity);
    this.start = (this.start + overflow) % this.capacity;
    this.length -= overflow;
    this.dropped += overflow;
    const end = (this.start + this.length) % this.capacity;
    const first = Math.min(chunk.length, this.capacity - end);
    chunk.copy(this.buffer, end, 0, first);
    chunk.copy(this.buffer, 0, first);
    this.length += chunk.length;
  }

  contents(): Buffer {
    const first = this.buffer.subarray(this.start, Math.min(this.capacity, this.start + this.length));
    const rest = this.buffer.subarray(0, this.length - first.length);
    return Buffer.concat([first, rest]);
  }

  get size(): number {
    return this.length;
  }
}

/** Prefixes every line of a stream with the time it arrived; a line split across chunks is stamped once. */
export class LineStamper {
  private atLineStart = true;

  constructor(private readonly now: () => Date = () => new Date()) {}

  stamp(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const prefix = Buffer.from(`${this.now().toISOString()} `);
    let lines = this.atLineStart ? 1 : 0;
    for (let at = chunk.indexOf(10); at !== -1 && at < chunk.length - 1; at = chunk.indexOf(10, at + 1)) lines++;
    const out = Buffer.allocUnsafe(chunk.length + lines * prefix.length);
    let from = 0;
    let to = 0;
    while (from < chunk.length) {
      if (this.atLineStart) to += prefix.copy(out, to);
      const newline = chunk.indexOf(10, from);
      const end = newline === -1 ? chunk.length : newline + 1;
      to += chunk.copy(out, to, from, end);
      this.atLineStart = newline !== -1;
      from = end;
    }
    return out;
  }
}

export class BuildLog {
  private written = 0;
  private readonly stamper = new LineStamper();
  private readonly tail: ByteRing;
  private readonly recent = new ByteRing(RECENT_BYTES);
  private closed: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    private readonly file: WriteStream,
    private readonly limits: BuildLogLimits,
  ) {
    this.tail = new ByteRing(limits.tailBytes);
  }

  /** Opens `path` for appending (created if missing). */
  static async open(path: string, limits: BuildLogLimits = { headBytes: LOG_HEAD_BYTES, tailBytes: LOG_TAIL_BYTES }): Promise<BuildLog> {
    const file = createWriteStream(path, { flags: 'a' });
    await new Promise<void>((resolve, reject) => {
      file.once('open', () => resolve());
      file.once('error', reject);
    });
    return new BuildLog(path, file, limits);
  }

  /** Appends `chunk`, each line stamped; resolves when the file can take more (back-pressure reaches the step). */
  write(output: Buffer): Promise<void> {
    this.recent.push(output);
    const chunk = this.stamper.stamp(output);
    const room = Math.max(0, this.limits.headBytes - this.written);
    const head = chunk.subarray(0, room);
    if (chunk.length > room) this.tail.push(chunk.subarray(room));
    if (head.length === 0) return Promise.resolve();
    this.written += head.length;
    if (this.file.write(head)) return Promise.resolve();
    return new Promise((resolve) => this.file.once('drain', resolve));
  }

  /** A line of our own (the step being started, a clean-up note), through the same limits. */
  note(line: string): Promise<void> {
    return this.write(Buffer.from(`${line}\n`));
  }

  /** A stream a step's stdout and stderr can be piped into (with `{ end: false }`). */
  sink(): Writable {
    return new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.write(chunk).then(() => done(), done);
      },
    });
  }

  /** The last few lines of output, for an error message. */
  lastLines(n: number): string[] {
    const text = this.recent.contents().toString('utf8').replace(/\s+$/, '');
    return text === '' ? [] : text.split('\n').slice(-n);
  }

  /** Writes what was held back (the drop notice and the tail) and closes the file. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.tail.size > 0) {
        if (this.tail.dropped > 0) {
          const notice =
            `\n[peipkg-manager: ${this.tail.dropped} bytes of output dropped here; ` +
            `this log keeps the first ${this.limits.headBytes} and the last ${this.tail.size} bytes]\n`;
          this.file.write(notice);
        }
        this.file.write(this.tail.contents());
      }
      await new Promise<void>((resolve, reject) => this.file.end((error?: Error | null) => (error ? reject(error) : resolve())));
    })();
    return this.closed;
  }
}
