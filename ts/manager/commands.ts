/**
 * What each `peipkg-manager` command does with its flags, loaded only when one runs (`cli.ts`
 * declares them): `help` loads none of the farm's modules.
 */

import { UsageError } from '../errors.js';
import { booleanFlag, type FlagBag, optionalFlag } from '../flags.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import { DEFAULT_CONFIG, DEFAULT_WORKER_CONFIG } from './cli.js';
import type { RetryAnswer } from './control.js';

function logFlags(args: FlagBag): { logLevel: LogLevel; logFormat: 'logfmt' | 'json' | undefined } {
  const level = optionalFlag(args, 'log-level') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`unknown log level "${level}" (want one of: ${LOG_LEVELS.join(', ')})`);
  }
  const format = optionalFlag(args, 'log-format');
  if (format !== undefined && format !== 'logfmt' && format !== 'json') throw new UsageError(`--log-format must be logfmt or json (got "${format}")`);
  return { logLevel: level as LogLevel, logFormat: format };
}

export async function run(args: FlagBag): Promise<void> {
  // Each command loads what it needs when it runs: `help` and a worker never load the daemon's modules.
  const { runManager } = await import('./daemon.js');
  process.exitCode = await runManager({ configPath: optionalFlag(args, 'config') ?? DEFAULT_CONFIG, ...logFlags(args), once: booleanFlag(args, 'once') });
}

export async function worker(args: FlagBag): Promise<void> {
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

export async function retry(args: FlagBag): Promise<void> {
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

