/**
 * `peipkg-repo`: the command table. Each command declares its flags here; `help` and `--help` are
 * generated from these declarations. Handlers turn flags into typed requests.
 */

import type { Argv } from 'yargs';

import { REQUIRED_FLAGS, runTool, valueOption, warnAs } from '../cli.js';
import { UsageError } from '../errors.js';
import { booleanFlag, durationFlag, FlagBag, optionalFlag, requireFlags, signingKeyFlag, timestampFlag } from '../flags.js';
import { init } from './init.js';
import { publish } from './publish.js';
import { resign } from './resign.js';
import { checkUrlTemplate, DEFAULT_URL_TEMPLATE } from './urlTemplate.js';
import { verifyRepository, type VerifyMode } from './verify.js';

export const TOOL = 'peipkg-repo';
const DEFAULT_LOCK_WAIT_MS = 10 * 60_000;

const warn = warnAs(TOOL);
const json = { type: 'boolean' as const, describe: 'print the result as JSON on stdout' };

async function initCommand(args: FlagBag): Promise<void> {
  const flags = requireFlags(args, ['name', 'sign-key', 'timestamp', 'out']);
  const timestamp = timestampFlag(flags.timestamp);
  await init({
    name: flags.name,
    description: optionalFlag(args, 'description') ?? '',
    signingKey: await signingKeyFlag(flags['sign-key'], '--sign-key', false),
    timestamp,
    outDir: flags.out,
  });
  process.stdout.write(`initialised repository ${JSON.stringify(flags.name)} at ${flags.out}\n`);
}

async function publishCommand(args: FlagBag): Promise<void> {
  const rebuild = booleanFlag(args, 'rebuild');
  const flags = requireFlags(args, ['in', 'sign-key', 'timestamp', 'out']);
  const timestamp = timestampFlag(flags.timestamp);
  const template = checkUrlTemplate(optionalFlag(args, 'package-url-template') ?? DEFAULT_URL_TEMPLATE);
  const result = await publish({
    inDir: flags.in,
    newDir: optionalFlag(args, 'new'),
    rebuild,
    allPackagesDir: optionalFlag(args, 'all-packages-dir'),
    signingKey: await signingKeyFlag(flags['sign-key'], '--sign-key', false),
    timestamp,
    outDir: flags.out,
    urlTemplate: template,
    requireSigned: booleanFlag(args, 'require-signed'),
    lockTimeoutMs: durationFlag(args, 'lock-timeout') ?? DEFAULT_LOCK_WAIT_MS,
    warn,
  });
  if (booleanFlag(args, 'json')) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(`published index_version ${result.indexVersion} (${result.added.length} new packages)\n`);
  for (const file of result.added) process.stdout.write(`  + ${file}\n`);
}

async function verifyCommand(args: FlagBag): Promise<void> {
  const { repo } = requireFlags(args, ['repo']);
  const mode = optionalFlag(args, 'mode') ?? 'both';
  if (mode !== 'metadata' && mode !== 'hashes' && mode !== 'both') {
    throw new UsageError(`--mode must be one of metadata, hashes, both (got ${JSON.stringify(mode)})`);
  }
  const report = await verifyRepository(repo, mode satisfies VerifyMode, optionalFlag(args, 'all-packages-dir'));
  if (booleanFlag(args, 'json')) {
    process.stdout.write(`${JSON.stringify({ ok: report.issues.length === 0, ...report }, null, 2)}\n`);
  } else {
    for (const w of report.warnings) process.stderr.write(`WARN: ${w}\n`);
    if (report.issues.length === 0) process.stdout.write('OK\n');
    else {
      for (const issue of report.issues) process.stderr.write(`FAIL: ${issue}\n`);
      process.stderr.write(`${TOOL}: ${report.issues.length} issue(s) found\n`);
    }
  }
  if (report.issues.length > 0) process.exitCode = 1;
}

async function resignCommand(args: FlagBag): Promise<void> {
  const flags = requireFlags(args, ['repo', 'sign-key']);
  const { fingerprint } = await resign({
    repoDir: flags.repo,
    signingKey: await signingKeyFlag(flags['sign-key'], '--sign-key', false),
    lockTimeoutMs: durationFlag(args, 'lock-timeout') ?? DEFAULT_LOCK_WAIT_MS,
  });
  process.stdout.write(`re-signed repo.json and both indexes with ${fingerprint}\n`);
}

const handler =
  (run: (args: FlagBag) => Promise<void>) =>
  (args: unknown): Promise<void> =>
    run(FlagBag.parse(args));

export function declareCommands(parser: Argv): Argv {
  return parser
    .usage('$0 <command> [flags]\n\nTurns .peipkg files into a signed repository state and audits it.')
    .command(
      'init',
      'Create an empty repository state',
      (y) =>
        y
          .option('name', valueOption('repository name (recorded in repo.json)'))
          .option('description', valueOption('human-readable description'))
          .option('sign-key', valueOption('Ed25519 private key; its public key goes to keys/<fingerprint>.pub'))
          .option('timestamp', valueOption('YYYY-MM-DDTHH:MM:SSZ: generated_at of the empty indexes'))
          .option('out', valueOption('directory for the new state; must be empty or not exist'))
          .group(['name', 'sign-key', 'timestamp', 'out'], REQUIRED_FLAGS)
          .example('$0 init --name peios-main --sign-key repo.ed25519 --timestamp 2026-05-06T12:00:00Z --out state', ''),
      handler(initCommand),
    )
    .command(
      'publish',
      'Add packages to a repository state (or rebuild it), sign, and write the new state',
      (y) =>
        y
          .option('in', valueOption('the previous state'))
          .option('new', valueOption('directory of new .peipkg files'))
          .option('sign-key', valueOption('Ed25519 private key listed in repo.json'))
          .option('timestamp', valueOption('YYYY-MM-DDTHH:MM:SSZ: the new generated_at (never earlier than the previous one)'))
          .option('out', valueOption('the new state; may be the same directory as --in (publish in place)'))
          .option('package-url-template', valueOption(`URL of new packages: /path or https://…, with {name} {version} {arch} {filename} (default ${DEFAULT_URL_TEMPLATE})`))
          .option('rebuild', { type: 'boolean', describe: 'rebuild the archive from --all-packages-dir instead of the previous one' })
          .option('all-packages-dir', valueOption('with --rebuild: flat directory holding every package ever published'))
          .option('require-signed', { type: 'boolean', describe: 'refuse unsigned packages (signed ones must always verify)' })
          .option('lock-timeout', valueOption('how long to wait for another publish to finish (default 10m)'))
          .option('json', json)
          .group(['in', 'sign-key', 'timestamp', 'out'], REQUIRED_FLAGS)
          .example('$0 publish --in state --new incoming --sign-key repo.ed25519 --timestamp 2026-05-07T12:00:00Z --out state', ''),
      handler(publishCommand),
    )
    .command(
      'verify',
      'Audit a repository state: signatures and consistency (metadata), package hashes (hashes), or both',
      (y) =>
        y
          .option('repo', valueOption('the state directory'))
          .option('mode', valueOption('metadata, hashes or both (default both)'))
          .option('all-packages-dir', valueOption('look for packages here (<name>_<version>_<arch>.peipkg) instead of inside the state'))
          .option('json', json)
          .group(['repo'], REQUIRED_FLAGS)
          .example('$0 verify --repo state --mode metadata', ''),
      handler(verifyCommand),
    )
    .command(
      'resign',
      'Sign repo.json and both indexes again after a hand edit of repo.json (key rotation)',
      (y) =>
        y
          .option('repo', valueOption('the state directory'))
          .option('sign-key', valueOption('the key to sign with: active or transitioning in the edited repo.json'))
          .option('lock-timeout', valueOption('how long to wait for a running publish (default 10m)'))
          .group(['repo', 'sign-key'], REQUIRED_FLAGS)
          .example('$0 resign --repo state --sign-key new-repo.ed25519', ''),
      handler(resignCommand),
    )
    .demandCommand(1, 'a command is required');
}

export async function main(argv: string[]): Promise<number> {
  return runTool(TOOL, declareCommands, argv);
}
