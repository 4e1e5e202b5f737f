/**
 * `peipkg-build`: the command table. Each command declares its flags here; `help` and `--help`
 * are generated from these declarations. Handlers turn flags into a typed request and call the
 * module that does the work.
 */


import type { Argv } from 'yargs';

import { REQUIRED_FLAGS, runTool, valueOption } from '../cli.js';
import type { FlagBag } from '../flags.js';
import type * as CommandModule from './commands.js';
import { DEFAULT_ZSTD } from './compression.js';
import { DEFAULT_BUILD_USER } from './defaultUser.js';

export const TOOL = 'peipkg-build';

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
      handler('buildCommand'),
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
      handler('packCommand'),
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
      handler('checkCommand'),
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
      handler('binarySignCommand'),
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
      handler('verifyCommand'),
    )
    .demandCommand(1, 'a command is required');
}

export async function main(argv: string[]): Promise<number> {
  return runTool(TOOL, declareCommands, argv);
}
