/**
 * `peipkg-repo`: the command table. Each command declares its flags here; `help` and `--help` are
 * generated from these declarations. Handlers turn flags into typed requests.
 */

import type { Argv } from 'yargs';

import { REQUIRED_FLAGS, runTool, valueOption } from '../cli.js';
import type { FlagBag } from '../flags.js';
import type * as CommandModule from './commands.js';
import { DEFAULT_URL_TEMPLATE } from './urlTemplate.js';

export const TOOL = 'peipkg-repo';

const json = { type: 'boolean' as const, describe: 'print the result as JSON on stdout' };

type Commands = typeof CommandModule;
type CommandName = { [K in keyof Commands]: Commands[K] extends (args: FlagBag) => Promise<void> ? K : never }[keyof Commands];

/** Runs a command, loading its code only now. */
const handler =
  (name: CommandName) =>
  async (args: unknown): Promise<void> => {
    const [commands, { FlagBag }] = await Promise.all([import('./commands.js'), import('../flags.js')]);
    await commands[name](FlagBag.parse(args));
  };

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
      handler('initCommand'),
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
      handler('publishCommand'),
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
      handler('verifyCommand'),
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
      handler('resignCommand'),
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
      handler('listCommand'),
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
            handler('keyAddCommand'),
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
            handler('keyRetireCommand'),
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
            handler('keyRevokeCommand'),
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
