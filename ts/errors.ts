/**
 * Typed errors shared by all three commands. Each carries the exit code the command returns when
 * it escapes to the top (DECISIONS.md, exit codes): 2 for a wrong command line, 1 for everything
 * else. Messages read as advice to the user; only `InternalError` is printed with a stack.
 */

export type ExitCode = 1 | 2;

export abstract class PeipkgError extends Error {
  abstract readonly exitCode: ExitCode;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The command line is wrong: unknown command or flag, missing value, malformed value. Exit 2. */
export class UsageError extends PeipkgError {
  readonly exitCode = 2;
}

/** Something the user gave us is invalid or a step failed for a reason they can act on. Exit 1. */
export class InputError extends PeipkgError {
  readonly exitCode = 1;
}

/** A bug in peipkg; printed with its stack and a request to report it. Exit 1. */
export class InternalError extends PeipkgError {
  readonly exitCode = 1;
}

/** Codes the native core attaches to its errors (crates/peipkg-native/src/error.rs). */
export type NativeErrorCode =
  | 'ERR_ARGUMENT'
  | 'ERR_IO'
  | 'ERR_KEY'
  | 'ERR_ZSTD'
  | 'ERR_LIMIT'
  | 'ERR_CHANGED'
  | 'ERR_FORMAT'
  | 'ERR_LOCKED'
  | 'ERR_PANIC';

/** An error raised by the native core, with the file it concerns when there is one. */
export class NativeError extends PeipkgError {
  readonly exitCode = 1;
  readonly code: NativeErrorCode;
  readonly path: string | undefined;
  /** The symbolic OS error (`ENOENT`) for `ERR_IO`. */
  readonly osError: string | undefined;

  constructor(code: NativeErrorCode, message: string, path?: string, osError?: string) {
    super(message);
    this.code = code;
    this.path = path;
    this.osError = osError;
  }
}

/** A file could not be read, written or renamed. */
export class FileSystemError extends NativeError {}
/** A key file is missing, malformed or not Ed25519. */
export class KeyError extends NativeError {}
/** A directory is locked by another process. */
export class LockedError extends NativeError {}
/** A file changed while it was read (size or content differs from what was recorded). */
export class FileChangedError extends NativeError {}
/** Data exceeded a size bound (decompression, tar field limits). */
export class LimitExceededError extends NativeError {}
/** Bytes do not follow the expected format (zstd frames, tar headers, PEM). */
export class CorruptDataError extends NativeError {}

const NATIVE_CLASSES: Record<NativeErrorCode, typeof NativeError> = {
  ERR_ARGUMENT: NativeError,
  ERR_IO: FileSystemError,
  ERR_KEY: KeyError,
  ERR_ZSTD: CorruptDataError,
  ERR_LIMIT: LimitExceededError,
  ERR_CHANGED: FileChangedError,
  ERR_FORMAT: CorruptDataError,
  ERR_LOCKED: LockedError,
  ERR_PANIC: NativeError,
};

interface NativeErrorShape {
  code?: unknown;
  message?: unknown;
  path?: unknown;
  osError?: unknown;
}

function isNativeCode(code: unknown): code is NativeErrorCode {
  return typeof code === 'string' && Object.hasOwn(NATIVE_CLASSES, code);
}

/**
 * Turns what the addon threw (an `Error` with `code`, or a plain error object from a batch result)
 * into a typed error. Argument errors and panics are bugs in peipkg, not user mistakes.
 */
export function fromNative(raw: unknown): PeipkgError {
  if (raw instanceof PeipkgError) return raw;
  const shape = (typeof raw === 'object' && raw !== null ? raw : {}) as NativeErrorShape;
  const message = typeof shape.message === 'string' ? shape.message : String(raw);
  if (!isNativeCode(shape.code)) {
    return new InternalError(message, { cause: raw });
  }
  if (shape.code === 'ERR_ARGUMENT' || shape.code === 'ERR_PANIC') {
    return new InternalError(`native core: ${message}`, { cause: raw });
  }
  const Class = NATIVE_CLASSES[shape.code];
  return new Class(
    shape.code,
    message,
    typeof shape.path === 'string' ? shape.path : undefined,
    typeof shape.osError === 'string' ? shape.osError : undefined,
  );
}

/**
 * OS errors that come from the machine rather than from peipkg — a full disk, a read-only mount, a
 * failing device — with what each means, and what the user can do about it (`on`: the directory
 * being written, when the caller knows it).
 */
const ENVIRONMENT: Record<string, { said: string; advice: (on: string) => string }> = {
  ENOSPC: { said: 'no space left on device', advice: (on) => `free space on the filesystem holding ${on} and run the command again` },
  EDQUOT: { said: 'disk quota exceeded', advice: (on) => `free space or raise the quota on the filesystem holding ${on}, and run the command again` },
  EROFS: { said: 'read-only file system', advice: (on) => `${on} is on a filesystem mounted read-only; write somewhere mounted read-write` },
  EIO: { said: 'input/output error', advice: () => 'the device reports errors; check it (dmesg) before trying again' },
  EMFILE: { said: 'too many open files', advice: () => 'raise the open-file limit (ulimit -n) and run the command again' },
  ENFILE: { said: 'too many open files in the system', advice: () => 'close other programs or raise fs.file-max, and run the command again' },
};

/** The symbolic code of an OS error, from Node (`code`) or the native core (`osError`). */
function osCode(error: unknown): string | undefined {
  if (error instanceof NativeError) return error.osError;
  if (!(error instanceof Error) || !('syscall' in error)) return undefined;
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? code : undefined;
}

export interface EnvironmentContext {
  /** The step that failed (the contract's prefix where there is one); by default the OS call and its path. */
  what?: string;
  /** What the failure left behind, for the user to know. */
  left?: string;
  /** The directory being written. */
  on?: string;
}

/**
 * `error` as a user's problem when it is one of the machine's (`ENVIRONMENT`): `<what>: <meaning>
 * (<code>); <left>; <advice>`, printed without a stack; undefined for anything else.
 */
export function environmentError(error: unknown, context: EnvironmentContext = {}): InputError | undefined {
  const code = osCode(error);
  const known = code === undefined ? undefined : ENVIRONMENT[code];
  if (known === undefined) return undefined;
  const e = error as NodeJS.ErrnoException & { dest?: string };
  // The native core's message is `<verb> <path>: <OS text>`; Node's names the call and paths.
  const call = error instanceof NativeError ? error.message.replace(/: [^:]*$/, '') : [e.syscall, e.path, e.dest && `-> ${e.dest}`].filter(Boolean).join(' ');
  const on = context.on ?? (error instanceof NativeError ? error.path : (e.dest ?? e.path)) ?? 'it';
  const parts = [`${context.what ?? call}: ${known.said} (${code})`, context.left, known.advice(on)];
  return new InputError(parts.filter(Boolean).join('; '), { cause: error });
}
