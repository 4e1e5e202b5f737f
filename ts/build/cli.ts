/**
 * `peipkg-build`: the command table. Each command's flags and description are declared here;
 * `help` and `--help` are generated from these declarations.
 */

import type { Argv } from 'yargs';

import { runTool } from '../cli.js';

export const TOOL = 'peipkg-build';

export function declareCommands(parser: Argv): Argv {
  return parser
    .usage('$0 <command> [flags]\n\nBuilds byte-deterministic, signed .peipkg packages from a recipe and a source tree.')
    .demandCommand(1, 'a command is required');
}

export async function main(argv: string[]): Promise<number> {
  return runTool(TOOL, declareCommands, argv);
}
