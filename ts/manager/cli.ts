/**
 * `peipkg-manager`: the build-farm daemon's command line: the daemon (default), `worker`, and
 * `retry`, which asks a running daemon to build a recipe now.
 */

import type { Argv } from 'yargs';

import { runTool, valueOption } from '../cli.js';
import { UsageError } from '../errors.js';
import { booleanFlag, FlagBag, optionalFlag } from '../flags.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import type { RetryAnswer } from './control.js';

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
  // Each command loads what it needs when it runs: `help` and a worker never load the daemon's modules.
  const { runManager } = await import('./daemon.js');
  process.exitCode = await runManager({ configPath: optionalFlag(args, 'config') ?? DEFAULT_CONFIG, ...logFlags(args), once: booleanFlag(args, 'once') });
}

async function worker(args: FlagBag): Promise<void> {
  if (booleanFlag(args, 'once')) throw new UsageError('--once is for the coordinator; a worker runs until it is stopped');
  const { runWorker } = await import('./worker.js');
  process.exitCode = await runWorker({ configPath: optionalFlag(args, 'config') ?? DEFAULT_WORKER_CONFIG, ...logFlags(args) });
}

/** What a retry did, in a sentence. */
function describeRetry(answer: RetryAnswer): string {
  const started = [...answer.running.map((v) => `${v} (building)`), ...answer.queued.filter((v) => !answer.running.includes(v)).map((v) => `${v} (queued)`)];
  const cleared = answer.cleared.length > 0 ? `; back-off cleared for ${answer.cleared.join(', ')}` : '';
  return started.length > 0 ? `${answer.recipe}: ${started.join(', ')}${cleared}` : `${answer.recipe}: ${answer.reason ?? 'nothing was queued'}${cleared}`;
}

async function retry(args: FlagBag): Promise<void> {
  const recipe = optionalFlag(args, 'recipe');
  if (recipe === undefined) throw new UsageError('retry needs the recipe id: peipkg-manager retry [--config PATH] RECIPE [VERSION]');
  const version = optionalFlag(args, 'version');
  const [{ loadConfig }, { requestRetry }] = await Promise.all([import('./config.js'), import('./control.js')]);
  const config = await loadConfig(optionalFlag(args, 'config') ?? DEFAULT_CONFIG);
  const answer = await requestRetry(config, { recipe, ...(version !== undefined ? { version } : {}) });
  if (booleanFlag(args, 'json')) process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
  else process.stdout.write(`${describeRetry(answer)}\n`);
  // Nothing queued is not what was asked for: a script must be able to tell.
  process.exitCode = answer.queued.length > 0 || answer.running.length > 0 ? 0 : 1;
}

export function declareCommands(parser: Argv): Argv {
  return parser
    .usage('$0 [--config PATH] [--once] [flags]\n$0 worker [--config PATH] [flags]\n$0 retry [--config PATH] RECIPE [VERSION]\n\nWatches upstream git tags, builds new versions, publishes them and syncs the repository; or, as a worker, builds jobs for a coordinator.')
    // The flags are declared on the tool itself, not in the default command's builder, so that
    // shell completion (which does not run a default command's builder) offers them.
    .option('config', valueOption(`configuration file (default ${DEFAULT_CONFIG})`))
    .option('log-level', valueOption('debug, info, warn or error (default info)'))
    .option('log-format', valueOption('logfmt (default) or json; overrides [manager].log_format'))
    .option('once', { type: 'boolean', describe: 'poll every recipe once, build and publish what is new, then exit (1 if anything failed)' })
    .command('$0', 'Run the farm (as a daemon, or one sweep with --once)', (y) => y, (args: unknown) => run(FlagBag.parse(args)))
    .command(
      'retry <recipe> [version]',
      'Ask the running daemon to build a recipe now: clears the back-off of its failed versions (or of VERSION) and polls it at once',
      (y) =>
        y
          .positional('recipe', { type: 'string', describe: 'the recipe id (its directory name)' })
          .positional('version', { type: 'string', describe: 'one package version, e.g. 1.2.0-1 (default: every failed version of the recipe)' })
          .option('json', { type: 'boolean', describe: 'print the daemon\'s answer as JSON' }),
      (args: unknown) => retry(FlagBag.parse(args)),
    )
    .command('worker', `Run a build worker of a farm of many machines (--config default ${DEFAULT_WORKER_CONFIG})`, (y) => y, (args: unknown) => worker(FlagBag.parse(args)))
    .example('$0 --config /etc/peipkg-manager/config.toml', '')
    .example('$0 --config farm.toml --once --log-format json', '')
    .example('$0 worker --config /etc/peipkg-worker/worker.toml', '')
    .example('$0 retry --config /etc/peipkg-manager/config.toml hello 2.12-1', '');
}

export async function main(argv: string[]): Promise<number> {
  return runTool(TOOL, declareCommands, argv);
}
