/**
 * `peipkg-manager`: the build-farm daemon's command line. No subcommands: flags, then run.
 */

import type { Argv } from 'yargs';

import { runTool, valueOption } from '../cli.js';
import { UsageError } from '../errors.js';
import { booleanFlag, FlagBag, optionalFlag } from '../flags.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import { runManager } from './daemon.js';
import { runWorker } from './worker.js';

export const TOOL = 'peipkg-manager';
export const DEFAULT_CONFIG = '/etc/peipkg-manager/config.toml';

export const DEFAULT_WORKER_CONFIG = '/etc/peipkg-worker/worker.toml';

function logFlags(args: FlagBag): { logLevel: LogLevel; logFormat: 'logfmt' | 'json' | undefined } {
  const level = optionalFlag(args, 'log-level') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`unknown log level "${level}" (want one of: ${LOG_LEVELS.join(', ')})`);
  }
  const format = optionalFlag(args, 'log-format');
  if (format !== undefined && format !== 'logfmt' && format !== 'json') throw new UsageError(`--log-format must be logfmt or json (got "${format}")`);
  return { logLevel: level as LogLevel, logFormat: format };
}

async function run(args: FlagBag): Promise<void> {
  process.exitCode = await runManager({ configPath: optionalFlag(args, 'config') ?? DEFAULT_CONFIG, ...logFlags(args), once: booleanFlag(args, 'once') });
}

async function worker(args: FlagBag): Promise<void> {
  if (booleanFlag(args, 'once')) throw new UsageError('--once is for the coordinator; a worker runs until it is stopped');
  process.exitCode = await runWorker({ configPath: optionalFlag(args, 'config') ?? DEFAULT_WORKER_CONFIG, ...logFlags(args) });
}

export function declareCommands(parser: Argv): Argv {
  return parser
    .usage('$0 [--config PATH] [--once] [flags]\n$0 worker [--config PATH] [flags]\n\nWatches upstream git tags, builds new versions, publishes them and syncs the repository; or, as a worker, builds jobs for a coordinator.')
    // The flags are declared on the tool itself, not in the default command's builder, so that
    // shell completion (which does not run a default command's builder) offers them.
    .option('config', valueOption(`configuration file (default ${DEFAULT_CONFIG})`))
    .option('log-level', valueOption('debug, info, warn or error (default info)'))
    .option('log-format', valueOption('logfmt (default) or json; overrides [manager].log_format'))
    .option('once', { type: 'boolean', describe: 'poll every recipe once, build and publish what is new, then exit (1 if anything failed)' })
    .command('$0', 'Run the farm (as a daemon, or one sweep with --once)', (y) => y, (args: unknown) => run(FlagBag.parse(args)))
    .command('worker', `Run a build worker of a farm of many machines (--config default ${DEFAULT_WORKER_CONFIG})`, (y) => y, (args: unknown) => worker(FlagBag.parse(args)))
    .example('$0 --config /etc/peipkg-manager/config.toml', '')
    .example('$0 --config farm.toml --once --log-format json', '')
    .example('$0 worker --config /etc/peipkg-worker/worker.toml', '');
}

export async function main(argv: string[]): Promise<number> {
  return runTool(TOOL, declareCommands, argv);
}
