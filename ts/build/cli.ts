/**
 * `peipkg-build`: the command table. Each command declares its flags here; `help` and `--help`
 * are generated from these declarations. Handlers turn flags into a typed request and call the
 * module that does the work.
 */

import { tmpdir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';

import type { Argv } from 'yargs';

import { REQUIRED_FLAGS, runTool, valueOption, warnAs } from '../cli.js';
import { InputError, UsageError } from '../errors.js';
import { signElf, signingKeyInfo, type SigningKey } from '../native.js';
import {
  booleanFlag,
  durationFlag,
  FlagBag,
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
import { checkGrantPath, describeIsolation, detectIsolation, SANDBOX_MODES, type SandboxMode } from './sandbox.js';
import { ENV_NAME, RESERVED_ENV, type BuildUser } from './script.js';
import { DEFAULT_BUILD_USER, lookupBuildUser, runningAsRoot } from './user.js';

export const TOOL = 'peipkg-build';

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

async function buildCommand(args: FlagBag): Promise<void> {
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
    warn,
  });
  printPackages(packages, booleanFlag(args, 'json'));
}

async function packCommand(args: FlagBag): Promise<void> {
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

async function checkCommand(args: FlagBag): Promise<void> {
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

async function binarySignCommand(args: FlagBag): Promise<void> {
  const verify = optionalFlag(args, 'verify');
  if (verify !== undefined) return binaryVerifyCommand(args, verify);
  if (listFlag(args, 'public-key').length > 0) throw new UsageError('--public-key is for --verify; signing takes the private key with --key');
  const flags = requireFlags(args, ['in', 'key']);
  const key = await signingKeyFlag(flags.key, '--key', false);
  await signElf(flags.in, key);
  if (booleanFlag(args, 'json')) process.stdout.write(`${JSON.stringify({ path: flags.in, fingerprint: signingKeyInfo(key).fingerprint }, null, 2)}\n`);
  else process.stdout.write(`${flags.in}\n`);
}

async function verifyCommand(args: FlagBag): Promise<void> {
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

const handler =
  (run: (args: FlagBag) => Promise<void>) =>
  (args: unknown): Promise<void> =>
    run(FlagBag.parse(args));

export function declareCommands(parser: Argv): Argv {
  return parser
    .usage('$0 <command> [flags]\n\nBuilds byte-deterministic, signed .peipkg packages from a recipe and a source tree.')
    .command(
      'build',
      'Run a recipe end to end: build.sh, partition, one .peipkg per [[package]]',
      (y) =>
        y
          .option('recipe', valueOption('path of peipkg.toml (its directory holds build.sh)'))
          .option('source', valueOption('source tree, given to build.sh as $SOURCE_DIR'))
          .option('version', valueOption('package version, [<epoch>:]<upstream>-<revision>'))
          .option('source-ref', valueOption('recorded as build.source_ref, e.g. git+<url>#refs/tags/<tag>'))
          .option('farm-id', valueOption('recorded as build.farm_id'))
          .option('timestamp', valueOption('YYYY-MM-DDTHH:MM:SSZ: every mtime and SOURCE_DATE_EPOCH'))
          .option('out', valueOption('output directory (created when packages are written)'))
          .option('sign-key', valueOption('Ed25519 private key (PKCS#8 PEM or 32-byte seed); omit for unsigned packages'))
          .option('deferred-signature', {
            type: 'boolean',
            describe: 'write unsigned packages in the signable form (trailer in its own zstd frame), for a key holder to sign in place later without recompressing; excludes --sign-key',
          })
          .option('build-env', valueOption('NAME=VALUE: an extra variable for build.sh (repeatable)'))
          .option('zstd-level', valueOption(`zstd level 1-22 (default ${DEFAULT_ZSTD.level})`))
          .option('timeout', valueOption('stop build.sh after this long, e.g. 2h (default: no limit)'))
          .option('binary-sign-key', valueOption('NAME=PATH: a key for the recipe\'s [[sign]] stanzas (repeatable)'))
          .option('build-user', valueOption(`when run as root, the user build.sh runs as (default ${DEFAULT_BUILD_USER})`))
          .option('sandbox', valueOption('auto (default): run build.sh in the bubblewrap sandbox where the host allows it; require: refuse to build without it; off: no sandbox'))
          .option('network', { type: 'boolean', describe: 'let build.sh reach the network (it has loopback only otherwise)' })
          .option('bind', valueOption('PATH: a host directory build.sh may write, at the same path (repeatable), e.g. a cache'))
          .option('ro-bind', valueOption('PATH: a host path build.sh may read, at the same path (repeatable), e.g. a tool\'s socket'))
          .option('hide', valueOption('PATH: a host path build.sh must not see, where it lies in /usr or /etc (repeatable)'))
          .option('json', { type: 'boolean', describe: 'print a JSON summary instead of one path per line' })
          .group(['recipe', 'source', 'version', 'source-ref', 'farm-id', 'timestamp', 'out'], REQUIRED_FLAGS)
          .example('$0 build --recipe hello/peipkg.toml --source src --version 1.0-1 --source-ref git+https://x#refs/tags/v1.0 --farm-id farm-1 --timestamp 2026-05-06T12:00:00Z --out out --sign-key farm.ed25519', ''),
      handler(buildCommand),
    )
    .command(
      'pack',
      'Write one .peipkg from a resolved manifest.json and a staged tree',
      (y) =>
        y
          .option('manifest', valueOption('manifest JSON (name, version, architecture, build, relations…)'))
          .option('staged', valueOption('the tree to package'))
          .option('out', valueOption('output .peipkg path'))
          .option('sign-key', valueOption('Ed25519 private key; omit for an unsigned package'))
          .option('deferred-signature', { type: 'boolean', describe: 'write the unsigned package in the signable form (see build --help); excludes --sign-key' })
          .option('zstd-level', valueOption(`zstd level 1-22 (default ${DEFAULT_ZSTD.level})`))
          .option('json', { type: 'boolean', describe: 'print a JSON summary instead of the path' })
          .group(['manifest', 'staged', 'out'], REQUIRED_FLAGS)
          .example('$0 pack --manifest manifest.json --staged tree --out kernel_6.8-1_x86_64.peipkg --sign-key farm.ed25519', ''),
      handler(packCommand),
    )
    .command(
      'check',
      'Validate a recipe completely without building it (for recipe authors and CI)',
      (y) =>
        y
          .option('recipe', valueOption('path of peipkg.toml'))
          .option('tags', { type: 'array', string: true, requiresArg: true, describe: 'upstream tag names to test tag_pattern against' })
          .option('staged', valueOption('a staged tree (what build.sh produces) to test the file globs against'))
          .option('json', { type: 'boolean', describe: 'print the report as JSON' })
          .group(['recipe'], REQUIRED_FLAGS)
          .example('$0 check --recipe hello/peipkg.toml --tags v1.0.0 v2.0.0-rc.1', ''),
      handler(checkCommand),
    )
    .command(
      'binary-sign',
      'Embed a .peios.sig signature into a little-endian ELF64 binary, in place (or check one with --verify)',
      (y) =>
        y
          .option('in', valueOption('the ELF binary to sign'))
          .option('key', valueOption('Ed25519 private key (PKCS#8 PEM or 32-byte seed)'))
          .option('verify', valueOption('FILE: instead of signing, check the .peios.sig of FILE against --public-key (exit 0 valid, 1 invalid or unsigned); excludes --in and --key'))
          .option('public-key', valueOption('with --verify: a public key (SPKI PEM or 32 raw bytes) the signature may be by; repeatable'))
          .option('json', { type: 'boolean', describe: 'print the result as JSON' })
          .group(['in', 'key'], REQUIRED_FLAGS)
          .example('$0 binary-sign --in staged/usr/bin/hello --key release.ed25519', '')
          .example('$0 binary-sign --verify staged/usr/bin/hello --public-key release.pub', ''),
      handler(binarySignCommand),
    )
    .command(
      'verify <files..>',
      'Check packages against the format rules and print their manifests',
      (y) =>
        y
          // `default: undefined` keeps help from showing "[default: []]" next to "[required]".
          .positional('files', { type: 'string', array: true, describe: '.peipkg files', default: undefined })
          .option('public-key', valueOption('trusted public key (SPKI PEM or 32 raw bytes); repeatable'))
          .option('require-signed', { type: 'boolean', describe: 'treat unsigned packages as invalid' })
          .option('strict', { type: 'boolean', describe: 'also check layout and determinism rules (producer CI)' })
          .option('list', { type: 'boolean', describe: 'list each valid package\'s files (type and mode, size, path, symlink target) instead of its manifest' })
          .option('json', { type: 'boolean', describe: 'print results as JSON (with --list, each valid result has a "files" array)' })
          .example('$0 verify out/*.peipkg --public-key farm.pub --require-signed', '')
          .example('$0 verify --list out/hello_1.0-1_x86_64.peipkg', ''),
      handler(verifyCommand),
    )
    .demandCommand(1, 'a command is required');
}

export async function main(argv: string[]): Promise<number> {
  return runTool(TOOL, declareCommands, argv);
}
