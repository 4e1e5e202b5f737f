/**
 * `peipkg-manager`: the build-farm daemon's command line: the daemon (default), `worker`, and
 * `retry`, which asks a running daemon to build a recipe now.
 */

import type { Argv } from 'yargs';

import { runTool, valueOption } from '../cli.js';

export const TOOL = 'peipkg-manager';
export const DEFAULT_CONFIG = '/etc/peipkg-manager/config.toml';

export const DEFAULT_WORKER_CONFIG = '/etc/peipkg-worker/worker.toml';

/** Runs a command, loading its code only now. */
const handler =
  (name: 'run' | 'worker' | 'retry') =>
  async (args: unknown): Promise<void> => {
    const [commands, { FlagBag }] = await Promise.all([import('./commands.js'), import('../flags.js')]);
    await commands[name](FlagBag.parse(args));
  };

export function declareCommands(parser: Argv): Argv {
  return parser
    .usage('$0 [--config PATH] [--once] [flags]\n$0 worker [--config PATH] [flags]\n$0 retry [--config PATH] RECIPE [VERSION]\n\nWatches upstream git tags, builds new versions, publishes them and syncs the repository; or, as a worker, builds jobs for a coordinator.')
    // The flags are declared on the tool itself, not in the default command's builder, so that
    // shell completion (which does not run a default command's builder) offers them.
    .option('config', valueOption(`configuration file (default ${DEFAULT_CONFIG})`))
    .option('log-level', valueOption('debug, info, warn or error (default info)'))
    .option('log-format', valueOption('logfmt (default) or json; overrides [manager].log_format'))
    .option('once', { type: 'boolean', describe: 'poll every recipe once, build and publish what is new, then exit (1 if anything failed)' })
    .command('$0', 'Run the farm (as a daemon, or one sweep with --once)', (y) => y, handler('run'))
    .command(
      'retry <recipe> [version]',
      'Ask the running daemon to build a recipe now: clears the back-off of its failed versions (or of VERSION) and polls it at once',
      (y) =>
        y
          .positional('recipe', { type: 'string', describe: 'the recipe id (its directory name)' })
          .positional('version', { type: 'string', describe: 'one package version, e.g. 1.2.0-1 (default: every failed version of the recipe)' })
          .option('json', { type: 'boolean', describe: 'print the daemon\'s answer as JSON' }),
      handler('retry'),
    )
    .command('worker', `Run a build worker of a farm of many machines (--config default ${DEFAULT_WORKER_CONFIG})`, (y) => y, handler('worker'))
    .example('$0 --config /etc/peipkg-manager/config.toml', '')
    .example('$0 --config farm.toml --once --log-format json', '')
    .example('$0 worker --config /etc/peipkg-worker/worker.toml', '')
    .example('$0 retry --config /etc/peipkg-manager/config.toml hello 2.12-1', '');
}

export async function main(argv: string[]): Promise<number> {
  return runTool(TOOL, declareCommands, argv);
}
