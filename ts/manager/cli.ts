/**
 * `peipkg-manager`: the build-farm daemon's command line.
 */

import type { Argv } from 'yargs';

import { runTool } from '../cli.js';

export const TOOL = 'peipkg-manager';

export function declareCommands(parser: Argv): Argv {
  return parser.usage(
    '$0 --config PATH [flags]\n\nWatches upstream git tags, builds new versions, publishes them and syncs the repository.',
  );
}

export async function main(argv: string[]): Promise<number> {
  return runTool(TOOL, declareCommands, argv);
}
