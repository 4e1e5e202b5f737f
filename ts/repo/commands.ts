/**
 * What each `peipkg-repo` command does with its flags. `cli.ts` declares the commands and loads
 * this module only when one runs, so `help` does not load the repository code, zod or the addon;
 * each command then loads only its own modules (verify does not compile publish and the site).
 */

import { warnAs } from '../cli.js';
import { UsageError } from '../errors.js';
import type { FlagBag} from '../flags.js';
import { booleanFlag, durationFlag, listFlag, optionalFlag, requireFlags, signingKeyFlag, timestampFlag } from '../flags.js';
import type { KeyEdit } from './key.js';
import { checkUrlTemplate, DEFAULT_URL_TEMPLATE } from './urlTemplate.js';
import type { VerifyMode } from './verify.js';

const TOOL = 'peipkg-repo';
const DEFAULT_LOCK_WAIT_MS = 10 * 60_000;

const warn = warnAs(TOOL);

export async function initCommand(args: FlagBag): Promise<void> {
  const flags = requireFlags(args, ['name', 'sign-key', 'timestamp', 'out']);
  const timestamp = timestampFlag(flags.timestamp);
  const signingKey = await signingKeyFlag(flags['sign-key'], '--sign-key', false);
  const [{ init }, { signingKeyInfo }] = await Promise.all([import('./init.js'), import('../native.js')]);
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

export async function publishCommand(args: FlagBag): Promise<void> {
  const rebuild = booleanFlag(args, 'rebuild');
  const flags = requireFlags(args, ['in', 'sign-key', 'timestamp', 'out']);
  const timestamp = timestampFlag(flags.timestamp);
  const template = checkUrlTemplate(optionalFlag(args, 'package-url-template') ?? DEFAULT_URL_TEMPLATE);
  const { publish } = await import('./publish.js');
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

export async function verifyCommand(args: FlagBag): Promise<void> {
  const { repo } = requireFlags(args, ['repo']);
  const mode = optionalFlag(args, 'mode') ?? 'both';
  if (mode !== 'metadata' && mode !== 'hashes' && mode !== 'both') {
    throw new UsageError(`--mode must be one of metadata, hashes, both (got ${JSON.stringify(mode)})`);
  }
  const { verifyRepository } = await import('./verify.js');
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

export async function resignCommand(args: FlagBag): Promise<void> {
  const flags = requireFlags(args, ['repo', 'sign-key']);
  const { resign } = await import('./resign.js');
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

export async function listCommand(args: FlagBag): Promise<void> {
  const { repo } = requireFlags(args, ['repo']);
  const { listingJson, listingTable, listPackages } = await import('./list.js');
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

async function reportKeyEdit(args: FlagBag, action: 'add' | 'retire' | 'revoke', repo: string, edit: KeyEdit): Promise<void> {
  const { keyEditJson, resignAdvice } = await import('./key.js');
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

export async function keyAddCommand(args: FlagBag): Promise<void> {
  const flags = requireFlags(args, ['repo', 'public-key']);
  const status = optionalFlag(args, 'status') ?? 'active';
  if (status !== 'active' && status !== 'transitioning') {
    throw new UsageError(`--status must be active or transitioning (got ${JSON.stringify(status)}); a new key is never added revoked`);
  }
  const validUntil = optionalFlag(args, 'valid-until');
  const { keyAdd, validUntilFlag } = await import('./key.js');
  const edit = await keyAdd({
    repoDir: flags.repo,
    publicKeyFile: flags['public-key'],
    status,
    validUntil: validUntil === undefined ? '' : validUntilFlag(validUntil),
    lockTimeoutMs: durationFlag(args, 'lock-timeout') ?? DEFAULT_LOCK_WAIT_MS,
  });
  await reportKeyEdit(args, 'add', flags.repo, edit);
}

export async function keyRetireCommand(args: FlagBag): Promise<void> {
  const flags = requireFlags(args, ['repo', 'fingerprint', 'valid-until']);
  const { fingerprintFlag, keyRetire, validUntilFlag } = await import('./key.js');
  const edit = await keyRetire({
    repoDir: flags.repo,
    fingerprint: fingerprintFlag(flags.fingerprint),
    validUntil: validUntilFlag(flags['valid-until']),
    lockTimeoutMs: durationFlag(args, 'lock-timeout') ?? DEFAULT_LOCK_WAIT_MS,
  });
  await reportKeyEdit(args, 'retire', flags.repo, edit);
}

export async function keyRevokeCommand(args: FlagBag): Promise<void> {
  const flags = requireFlags(args, ['repo', 'fingerprint']);
  const { fingerprintFlag, keyRevoke } = await import('./key.js');
  const edit = await keyRevoke({
    repoDir: flags.repo,
    fingerprint: fingerprintFlag(flags.fingerprint),
    remove: booleanFlag(args, 'remove'),
    lockTimeoutMs: durationFlag(args, 'lock-timeout') ?? DEFAULT_LOCK_WAIT_MS,
  });
  await reportKeyEdit(args, 'revoke', flags.repo, edit);
}

