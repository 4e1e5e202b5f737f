/**
 * `peipkg-manager`: the build-farm daemon's command line. No subcommands: flags, then run.
 */

import type { Argv } from 'yargs';

import { runTool, valueOption } from '../cli.js';
import { UsageError } from '../errors.js';
import { booleanFlag, FlagBag, optionalFlag } from '../flags.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import { runManager } from './daemon.js';

export const TOOL = 'peipkg-manager';
export const DEFAULT_CONFIG = '/etc/peipkg-manager/config.toml';

async function run(args: FlagBag): Promise<void> {
  const level = optionalFlag(args, 'log-level') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`unknown log level "${level}" (want one of: ${LOG_LEVELS.join(', ')})`);
  }
  const format = optionalFlag(args, 'log-format');
  if (format !== undefined && format !== 'logfmt' && format !== 'json') throw new UsageError(`--log-format must be logfmt or json (got "${format}")`);
  process.exitCode = await runManager({
    configPath: optionalFlag(args, 'config') ?? DEFAULT_CONFIG,
    logLevel: level as LogLevel,
    logFormat: format,
    once: booleanFlag(args, 'once'),
  });
}

export function declareCommands(parser: Argv): Argv {
  return parser
    .usage('$0 [--config PATH] [--once] [flags]\n\nWatches upstream git tags, builds new versions, publishes them and syncs the repository.')
    // The flags are declared on the tool itself, not in the default command's builder, so that
    // shell completion (which does not run a default command's builder) offers them.
    .option('config', valueOption(`configuration file (default ${DEFAULT_CONFIG})`))
    .option('log-level', valueOption('debug, info, warn or error (default info)'))
    .option('log-format', valueOption('logfmt (default) or json; overrides [manager].log_format'))
    .option('once', { type: 'boolean', describe: 'poll every recipe once, build and publish what is new, then exit (1 if anything failed)' })
    .command('$0', 'Run the farm (as a daemon, or one sweep with --once)', (y) => y, (args: unknown) => run(FlagBag.parse(args)))
    .example('$0 --config /etc/peipkg-manager/config.toml', '')
    .example('$0 --config farm.toml --once --log-format json', '');
}

export async function main(argv: string[]): Promise<number> {
  return runTool(TOOL, declareCommands, argv);
}
