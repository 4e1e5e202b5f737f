/**
 * What each `peipkg-build` command does with its flags. `cli.ts` declares the commands and loads
 * this module only when one runs, so `help` loads neither the build code, zod nor the addon.
 */

import { tmpdir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';


import { warnAs } from '../cli.js';
import { InputError, UsageError } from '../errors.js';
import { signElf, signingKeyInfo, type SigningKey } from '../native.js';
import type {
  FlagBag} from '../flags.js';
import {
  booleanFlag,
  durationFlag,
  integerFlag,
  listFlag,
  nameValueFlag,
  optionalFlag,
  requireFlags,
  signingKeyFlag,
  timestampFlag,
} from '../flags.js';
import { runBuild, type BuiltPackage, type SandboxRequest } from './build.js';
import { DEFAULT_ZSTD, zstdLevelProblem, type ZstdSettings } from './compression.js';
import { checkRecipe } from './check.js';
import { describeBinarySignature, verifyBinarySignature } from './binarySign.js';
import { describeSignature, formatListing, inspectPackages, trustedKeys } from './inspect.js';
import { runPack } from './pack.js';
import { scratchRemovalMode } from './scratch.js';
import { checkGrantPath, describeIsolation, detectIsolation, SANDBOX_MODES, type SandboxMode } from './sandbox.js';
import { ENV_NAME, RESERVED_ENV, type BuildUser } from './script.js';
import { DEFAULT_BUILD_USER, lookupBuildUser, runningAsRoot } from './user.js';

const TOOL = 'peipkg-build';

const warn = warnAs(TOOL);

function zstdSettings(args: FlagBag): ZstdSettings {
  const level = integerFlag(args, 'zstd-level');
  if (level === undefined) return DEFAULT_ZSTD;
  const problem = zstdLevelProblem(level);
  if (problem) throw new UsageError(`--zstd-level: ${problem}`);
  return { ...DEFAULT_ZSTD, level };
}

function buildEnv(args: FlagBag): Map<string, string> {
  const pairs = nameValueFlag(args, 'build-env');
  for (const name of pairs.keys()) {
    if (!ENV_NAME.test(name)) throw new InputError(`run build script: build-env: invalid variable name "${name}"`);
    if (RESERVED_ENV.includes(name)) throw new InputError(`run build script: build-env: "${name}" is reserved and cannot be overridden`);
  }
  return pairs;
}

function printPackages(packages: BuiltPackage[], json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify({ packages }, null, 2)}\n`);
  else for (const p of packages) process.stdout.write(`${p.path}\n`);
}

/** `--binary-sign-key NAME=PATH`, each key loaded now (before any build script can run). */
async function binarySignKeys(args: FlagBag, user: BuildUser | undefined): Promise<Map<string, SigningKey>> {
  const keys = new Map<string, SigningKey>();
  for (const [name, path] of nameValueFlag(args, 'binary-sign-key', 'PATH')) {
    keys.set(name, await signingKeyFlag(path, `--binary-sign-key "${name}"`, true, user?.uid));
  }
  return keys;
}

/** `--sandbox`, `--network`, `--bind`, `--ro-bind`, `--hide`; key files are hidden from the script too. */
async function sandboxRequest(args: FlagBag, keyPaths: readonly string[]): Promise<SandboxRequest> {
  const mode = optionalFlag(args, 'sandbox') ?? 'auto';
  if (!(SANDBOX_MODES as readonly string[]).includes(mode)) throw new UsageError(`--sandbox "${mode}": want one of ${SANDBOX_MODES.join(', ')}`);
  const binds = [
    ...listFlag(args, 'bind').map((path) => ({ path, writable: true })),
    ...listFlag(args, 'ro-bind').map((path) => ({ path, writable: false })),
  ];
  for (const bind of binds) await checkGrantPath(bind.path, bind.writable ? '--bind' : '--ro-bind');
  const hide = listFlag(args, 'hide');
  for (const path of hide) if (!isAbsolute(path)) throw new UsageError(`--hide ${path}: must be an absolute path`);
  return { mode: mode as SandboxMode, grants: { network: booleanFlag(args, 'network'), binds }, hide: [...hide, ...keyPaths.map((p) => resolve(p))] };
}

/** `--deferred-signature`, which writes the unsigned, signable form and so excludes `--sign-key`. */
function deferredSignature(args: FlagBag): boolean {
  const deferred = booleanFlag(args, 'deferred-signature');
  if (deferred && optionalFlag(args, 'sign-key') !== undefined) {
    throw new UsageError('--deferred-signature and --sign-key exclude each other: a deferred-signature package is written unsigned, to be signed later in place');
  }
  return deferred;
}

export async function buildCommand(args: FlagBag): Promise<void> {
  const deferred = deferredSignature(args);
  const zstd = zstdSettings(args);
  const env = buildEnv(args);
  const flags = requireFlags(args, ['recipe', 'source', 'version', 'source-ref', 'farm-id', 'timestamp', 'out']);
  const userName = optionalFlag(args, 'build-user');
  if (userName !== undefined && !runningAsRoot()) throw new InputError('--build-user only applies when peipkg-build runs as root');
  const user = runningAsRoot() ? await lookupBuildUser(userName ?? DEFAULT_BUILD_USER) : undefined;
  const binaryKeys = await binarySignKeys(args, user);
  const timestamp = timestampFlag(flags.timestamp);
  const timeoutMs = durationFlag(args, 'timeout');
  const keyPath = optionalFlag(args, 'sign-key');
  const signingKey = keyPath === undefined ? undefined : await signingKeyFlag(keyPath, '--sign-key', true, user?.uid);
  const packages = await runBuild({
    recipePath: flags.recipe,
    sourceDir: flags.source,
    version: flags.version,
    sourceRef: flags['source-ref'],
    farmId: flags['farm-id'],
    timestamp,
    outDir: flags.out,
    signingKey,
    deferredSignature: deferred,
    binarySignKeys: binaryKeys,
    buildEnv: env,
    zstd,
    timeoutMs,
    user,
    sandbox: await sandboxRequest(args, [...(keyPath === undefined ? [] : [keyPath]), ...nameValueFlag(args, 'binary-sign-key', 'PATH').values()]),
    scratchRemoval: scratchRemovalMode(process.env, warn),
    warn,
  });
  printPackages(packages, booleanFlag(args, 'json'));
}

export async function packCommand(args: FlagBag): Promise<void> {
  const deferred = deferredSignature(args);
  const zstd = zstdSettings(args);
  const flags = requireFlags(args, ['manifest', 'staged', 'out']);
  const keyPath = optionalFlag(args, 'sign-key');
  const built = await runPack({
    manifestPath: flags.manifest,
    stagedDir: flags.staged,
    outPath: flags.out,
    signingKey: keyPath === undefined ? undefined : await signingKeyFlag(keyPath, '--sign-key', false),
    deferredSignature: deferred,
    zstd,
    warn,
  });
  printPackages([built], booleanFlag(args, 'json'));
}

/** Which isolation `build` would give build.sh on this host, found by running the sandbox once. */
async function hostIsolation(): Promise<{ sandbox: boolean; description: string }> {
  const user = runningAsRoot() ? await lookupBuildUser(DEFAULT_BUILD_USER).catch(() => undefined) : undefined;
  if (runningAsRoot() && !user) return { sandbox: false, description: `unknown: the build user ${DEFAULT_BUILD_USER} does not exist (see setup.sh)` };
  const isolation = await detectIsolation('auto', user, tmpdir());
  return { sandbox: isolation.kind === 'sandbox', description: describeIsolation(isolation, user) };
}

export async function checkCommand(args: FlagBag): Promise<void> {
  const { recipe } = requireFlags(args, ['recipe']);
  const report = await checkRecipe({ recipePath: recipe, tags: listFlag(args, 'tags'), stagedDir: optionalFlag(args, 'staged') });
  const isolation = await hostIsolation();
  if (booleanFlag(args, 'json')) {
    process.stdout.write(`${JSON.stringify({ valid: report.problems.length === 0, ...report, isolation }, null, 2)}\n`);
  } else {
    const lines = [...report.summary, ...report.tags.map((t) => `  tag ${t.tag}${t.version ? ` → ${t.version}` : ''}: ${t.result}`), `build isolation on this host: ${isolation.description}`];
    process.stdout.write(`${lines.join('\n')}\n`);
    for (const w of report.warnings) process.stderr.write(`${TOOL}: warning: ${w}\n`);
    if (report.problems.length === 0) process.stdout.write(`${recipe}: valid\n`);
    else process.stderr.write(`${recipe}: ${report.problems.length} problem(s):\n${report.problems.map((p) => `  ${p.replaceAll('\n', '\n  ')}`).join('\n')}\n`);
  }
  if (report.problems.length > 0) process.exitCode = 1;
}

/** `binary-sign --verify FILE --public-key KEY…`: exit 0 when the signature verifies, 1 otherwise. */
async function binaryVerifyCommand(args: FlagBag, path: string): Promise<void> {
  const given = ['in', 'key'].filter((flag) => optionalFlag(args, flag) !== undefined);
  if (given.length > 0) {
    throw new UsageError(`--verify checks an existing signature and ${given.map((f) => `--${f}`).join(' and ')} ${given.length === 1 ? 'is' : 'are'} for signing: give one or the other`);
  }
  const keys = await trustedKeys(listFlag(args, 'public-key'));
  if (keys === undefined) {
    throw new InputError('--public-key is required with --verify: a .peios.sig section does not say which key made it, so give the public half of the key (repeatable)');
  }
  const result = await verifyBinarySignature(path, keys);
  if (booleanFlag(args, 'json')) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${describeBinarySignature(result)}\n`);
  if (!result.valid) process.exitCode = 1;
}

export async function binarySignCommand(args: FlagBag): Promise<void> {
  const verify = optionalFlag(args, 'verify');
  if (verify !== undefined) return binaryVerifyCommand(args, verify);
  if (listFlag(args, 'public-key').length > 0) throw new UsageError('--public-key is for --verify; signing takes the private key with --key');
  const flags = requireFlags(args, ['in', 'key']);
  const key = await signingKeyFlag(flags.key, '--key', false);
  await signElf(flags.in, key);
  if (booleanFlag(args, 'json')) process.stdout.write(`${JSON.stringify({ path: flags.in, fingerprint: signingKeyInfo(key).fingerprint }, null, 2)}\n`);
  else process.stdout.write(`${flags.in}\n`);
}

export async function verifyCommand(args: FlagBag): Promise<void> {
  const files = listFlag(args, 'files');
  if (files.length === 0) throw new InputError('name at least one package file to verify');
  const list = booleanFlag(args, 'list');
  const results = await inspectPackages({
    files,
    publicKeys: listFlag(args, 'public-key'),
    requireSigned: booleanFlag(args, 'require-signed'),
    strict: booleanFlag(args, 'strict'),
    list,
  });
  if (booleanFlag(args, 'json')) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else {
    for (const r of results) {
      if (r.valid) {
        const body = list ? formatListing(r.files ?? []) : JSON.stringify(r.manifest, null, 2);
        process.stdout.write(`${r.path}: valid, ${describeSignature(r.signature)}\n${body}${body === '' ? '' : '\n'}`);
      } else process.stdout.write(`${r.path}: INVALID\n${r.problems.map((p) => `  ${p}`).join('\n')}\n`);
    }
  }
  if (results.some((r) => !r.valid)) process.exitCode = 1;
}

