/**
 * Command-line values shared by the three commands, parsed into types once: required flags in a
 * fixed order (D-10), timestamps (DECISIONS.md: only `YYYY-MM-DDTHH:MM:SSZ`), `NAME=VALUE` lists,
 * durations, and signing keys. Wrong shapes are `UsageError`s (exit 2); a missing required flag
 * and everything found wrong later is an `InputError` (exit 1).
 */

import { stat } from 'node:fs/promises';

import { z } from 'zod';

import { parseDuration } from './duration.js';
import { InputError, PeipkgError, UsageError } from './errors.js';
import { timestampProblem } from './format/timestamp.js';
import { loadSigningKey, type SigningKey } from './native.js';

/** A flag's value as yargs delivers it: absent, a value, or (given twice) an array. */
const flagValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number(), z.boolean()]))]).optional();
export const FlagBag = z.record(z.string(), z.unknown());
export type FlagBag = z.infer<typeof FlagBag>;

function one(args: FlagBag, flag: string): string | undefined {
  const value = flagValue.parse(args[flag]);
  if (Array.isArray(value)) throw new UsageError(`--${flag} was given more than once`);
  if (value === undefined) return undefined;
  return String(value);
}

/** `--a`, `--a and --b`, `--a, --b and --c`. */
function flagList(flags: readonly string[]): string {
  const named = flags.map((f) => `--${f}`);
  return named.length <= 1 ? named.join('') : `${named.slice(0, -1).join(', ')} and ${named.at(-1)}`;
}

/**
 * The flags' values, in `order`. Every one missing (or empty) is named in one `InputError`
 * (exit 1), in `order`: `--key is required`, `--in and --key are required`.
 */
export function requireFlags<K extends string>(args: FlagBag, order: readonly K[]): Record<K, string> {
  const out = {} as Record<K, string>;
  const missing: K[] = [];
  for (const flag of order) {
    const value = one(args, flag);
    if (value === undefined || value === '') missing.push(flag);
    else out[flag] = value;
  }
  if (missing.length > 0) throw new InputError(`${flagList(missing)} ${missing.length === 1 ? 'is' : 'are'} required`);
  return out;
}

export function optionalFlag(args: FlagBag, flag: string): string | undefined {
  const value = one(args, flag);
  return value === '' ? undefined : value;
}

export function booleanFlag(args: FlagBag, flag: string): boolean {
  return args[flag] === true;
}

/** Every value of a repeatable flag. */
export function listFlag(args: FlagBag, flag: string): string[] {
  const value = flagValue.parse(args[flag]);
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

export function timestampFlag(value: string, flag = 'timestamp'): string {
  const problem = timestampProblem(value);
  if (problem) throw new UsageError(`--${flag}: ${problem}`);
  return value;
}

export function integerFlag(args: FlagBag, flag: string): number | undefined {
  const value = one(args, flag);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new UsageError(`--${flag} "${value}": expected an integer`);
  return n;
}

export function durationFlag(args: FlagBag, flag: string): number | undefined {
  const value = one(args, flag);
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new UsageError(`--${flag} "${value}": expected a positive duration such as 90s, 15m or 2h`);
  return ms;
}

/** `NAME=VALUE` pairs of a repeatable flag, split at the first `=`; names must be unique. */
export function nameValueFlag(args: FlagBag, flag: string, valueName = 'VALUE'): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const item of listFlag(args, flag)) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${flag} "${item}": expected NAME=${valueName}`);
    const name = item.slice(0, eq);
    if (pairs.has(name)) throw new UsageError(`--${flag} "${name}": duplicate name`);
    pairs.set(name, item.slice(eq + 1));
  }
  return pairs;
}

/**
 * Loads a private key. With `shieldFromBuildScripts`, when we run as root (so build scripts run as
 * another user who must not read it), a key readable by group or others is refused, as ssh refuses
 * such keys, and so is a key owned by `buildUid`. `label` names where the path came from
 * (`--sign-key`, `[signing].key_file`).
 */
export async function signingKeyFlag(path: string, label: string, shieldFromBuildScripts: boolean, buildUid?: number): Promise<SigningKey> {
  let key: SigningKey;
  try {
    key = loadSigningKey(path);
  } catch (error) {
    if (!(error instanceof PeipkgError)) throw error;
    throw new InputError(`${label}: ${error.message}`, { cause: error });
  }
  if (shieldFromBuildScripts && process.getuid?.() === 0) {
    const info = await stat(path);
    const mode = info.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new InputError(
        `${label} ${path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); ` +
          `run \`chmod 600 ${path}\`: build scripts run as another user and must not be able to read keys`,
      );
    }
    if (buildUid !== undefined && info.uid === buildUid) {
      throw new InputError(`${label} ${path} is owned by the build user, so build scripts could read it; run \`chown root:root ${path}\``);
    }
  }
  return key;
}
