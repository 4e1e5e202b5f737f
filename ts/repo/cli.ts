/**
 * `peipkg-repo`: the command table. Each command declares its flags here; `help` and `--help` are
 * generated from these declarations. Handlers turn flags into typed requests.
 */

import type { Argv } from 'yargs';

import { REQUIRED_FLAGS, runTool, valueOption, warnAs } from '../cli.js';
import { UsageError } from '../errors.js';
import { booleanFlag, durationFlag, FlagBag, listFlag, optionalFlag, requireFlags, signingKeyFlag, timestampFlag } from '../flags.js';
import { signingKeyInfo } from '../native.js';
import { init } from './init.js';
import { fingerprintFlag, keyAdd, keyEditJson, keyRetire, keyRevoke, resignAdvice, validUntilFlag, type KeyEdit } from './key.js';
import { listingJson, listingTable, listPackages } from './list.js';
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
  const signingKey = await signingKeyFlag(flags['sign-key'], '--sign-key', false);
  await init({
    name: flags.name,
    description: optionalFlag(args, 'description') ?? '',
    signingKey,
    timestamp,
    outDir: flags.out,
  });
  if (booleanFlag(args, 'json')) {
    const { fingerprint } = signingKeyInfo(signingKey);
    const result = { name: flags.name, out: flags.out, fingerprint, key_file: `keys/${fingerprint}.pub`, index_version: 1, generated_at: timestamp };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
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
  if (booleanFlag(args, 'json')) {
    const result = { repo: flags.repo, fingerprint, signed: ['repo.json', 'index/active.json', 'index/archive.json'] };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(`re-signed repo.json and both indexes with ${fingerprint}\n`);
}

async function listCommand(args: FlagBag): Promise<void> {
  const { repo } = requireFlags(args, ['repo']);
  const listing = await listPackages({ repoDir: repo, all: booleanFlag(args, 'all'), names: listFlag(args, 'name'), architectures: listFlag(args, 'arch') });
  for (const w of listing.warnings) warn(w);
  if (booleanFlag(args, 'json')) {
    process.stdout.write(`${JSON.stringify(listingJson(listing), null, 2)}\n`);
    return;
  }
  if (listing.packages.length === 0) {
    process.stdout.write(`no packages in the ${listing.index} index${args.name !== undefined || args.arch !== undefined ? ' match' : ''}\n`);
    return;
  }
  process.stdout.write(listingTable(listing));
}

function reportKeyEdit(args: FlagBag, action: 'add' | 'retire' | 'revoke', repo: string, edit: KeyEdit): void {
  if (booleanFlag(args, 'json')) {
    process.stdout.write(`${JSON.stringify(keyEditJson(action, repo, edit), null, 2)}\n`);
    return;
  }
  if (action === 'add') {
    const until = edit.validUntil === '' ? '' : ` until ${edit.validUntil}`;
    process.stdout.write(`added key ${edit.fingerprint} (${edit.status}${until}) to repo.json${edit.keyFileWritten ? ` and wrote ${edit.keyFileWritten}` : ''}\n`);
  } else if (action === 'retire') {
    process.stdout.write(`key ${edit.fingerprint} is transitioning until ${edit.validUntil} in repo.json\n`);
  } else {
    process.stdout.write(`${edit.status === 'removed' ? 'removed' : 'revoked'} key ${edit.fingerprint} in repo.json\n`);
  }
  process.stdout.write(resignAdvice(repo, edit));
}

async function keyAddCommand(args: FlagBag): Promise<void> {
  const flags = requireFlags(args, ['repo', 'public-key']);
  const status = optionalFlag(args, 'status') ?? 'active';
  if (status !== 'active' && status !== 'transitioning') {
    throw new UsageError(`--status must be active or transitioning (got ${JSON.stringify(status)}); a new key is never added revoked`);
  }
  const validUntil = optionalFlag(args, 'valid-until');
  const edit = await keyAdd({
    repoDir: flags.repo,
    publicKeyFile: flags['public-key'],
    status,
    validUntil: validUntil === undefined ? '' : validUntilFlag(validUntil),
    lockTimeoutMs: durationFlag(args, 'lock-timeout') ?? DEFAULT_LOCK_WAIT_MS,
  });
  reportKeyEdit(args, 'add', flags.repo, edit);
}

async function keyRetireCommand(args: FlagBag): Promise<void> {
  const flags = requireFlags(args, ['repo', 'fingerprint', 'valid-until']);
  const edit = await keyRetire({
    repoDir: flags.repo,
    fingerprint: fingerprintFlag(flags.fingerprint),
    validUntil: validUntilFlag(flags['valid-until']),
    lockTimeoutMs: durationFlag(args, 'lock-timeout') ?? DEFAULT_LOCK_WAIT_MS,
  });
  reportKeyEdit(args, 'retire', flags.repo, edit);
}

async function keyRevokeCommand(args: FlagBag): Promise<void> {
  const flags = requireFlags(args, ['repo', 'fingerprint']);
  const edit = await keyRevoke({
    repoDir: flags.repo,
    fingerprint: fingerprintFlag(flags.fingerprint),
    remove: booleanFlag(args, 'remove'),
    lockTimeoutMs: durationFlag(args, 'lock-timeout') ?? DEFAULT_LOCK_WAIT_MS,
  });
  reportKeyEdit(args, 'revoke', flags.repo, edit);
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
          .option('json', json)
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
          .option('json', json)
          .group(['repo', 'sign-key'], REQUIRED_FLAGS)
          .example('$0 resign --repo state --sign-key new-repo.ed25519', ''),
      handler(resignCommand),
    )
    .command(
      'list',
      'List the packages of a repository state: the active index (latest versions), or the archive with --all',
      (y) =>
        y
          .option('repo', valueOption('the state directory'))
          .option('all', { type: 'boolean', describe: 'every archived version, with an ACTIVE column, instead of the active index' })
          .option('name', valueOption('only this package name, or a pattern with * (any characters) and ? (one character); repeatable'))
          .option('arch', valueOption('only this architecture (x86_64, aarch64, noarch, …); repeatable'))
          .option('json', { type: 'boolean', describe: 'print a JSON array of packages (snake_case keys, exact sizes) on stdout' })
          .group(['repo'], REQUIRED_FLAGS)
          .example("$0 list --repo state --all --name 'lib*' --arch x86_64", ''),
      handler(listCommand),
    )
    .command(
      'key',
      'Add, retire or revoke a signing key in repo.json (key rotation without hand edits; run resign afterwards)',
      (y) =>
        y
          .command(
            'add',
            'Add a public key to repo.json (active, or transitioning with --valid-until) and keys/<fingerprint>.pub',
            (a) =>
              a
                .option('repo', valueOption('the state directory'))
                .option('public-key', valueOption('Ed25519 public key: SPKI PEM (openssl pkey -pubout) or 32 raw bytes'))
                .option('status', valueOption('active (default) or transitioning'))
                .option('valid-until', valueOption('YYYY-MM-DDTHH:MM:SSZ: required with --status transitioning'))
                .option('lock-timeout', valueOption('how long to wait for a running publish (default 10m)'))
                .option('json', json)
                .group(['repo', 'public-key'], REQUIRED_FLAGS)
                .example('$0 key add --repo state --public-key new-repo.pub', ''),
            handler(keyAddCommand),
          )
          .command(
            'retire',
            'Make an active key transitioning until --valid-until (planned rotation: clients still accept it meanwhile)',
            (r) =>
              r
                .option('repo', valueOption('the state directory'))
                .option('fingerprint', valueOption('the active key, as repo.json lists it (64 lowercase hex digits)'))
                .option('valid-until', valueOption('YYYY-MM-DDTHH:MM:SSZ: until when clients accept the key'))
                .option('lock-timeout', valueOption('how long to wait for a running publish (default 10m)'))
                .option('json', json)
                .group(['repo', 'fingerprint', 'valid-until'], REQUIRED_FLAGS)
                .example('$0 key retire --repo state --fingerprint a18112b0… --valid-until 2026-08-01T00:00:00Z', ''),
            handler(keyRetireCommand),
          )
          .command(
            'revoke',
            'Mark a key revoked in repo.json (its signatures stop counting), or drop it with --remove',
            (r) =>
              r
                .option('repo', valueOption('the state directory'))
                .option('fingerprint', valueOption('the key, as repo.json lists it (64 lowercase hex digits)'))
                .option('remove', { type: 'boolean', describe: 'remove the entry instead of marking it revoked (a retired key at the end of a rotation)' })
                .option('lock-timeout', valueOption('how long to wait for a running publish (default 10m)'))
                .option('json', json)
                .group(['repo', 'fingerprint'], REQUIRED_FLAGS)
                .example('$0 key revoke --repo state --fingerprint a18112b0…', ''),
            handler(keyRevokeCommand),
          )
          .demandCommand(1, 'a key command is required: add, retire or revoke')
          .example('$0 key add --repo state --public-key new.pub && $0 key revoke --repo state --fingerprint <old> && $0 resign --repo state --sign-key new.pem', ''),
      () => undefined,
    )
    .demandCommand(1, 'a command is required');
}

export async function main(argv: string[]): Promise<number> {
  return runTool(TOOL, declareCommands, argv);
}
