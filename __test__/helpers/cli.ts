/** Runs the real command-line tools (the launchers in bin/, over the built dist/). */

import { join } from 'node:path';

import { execa } from 'execa';

import { repoRoot } from './fixtures.js';

export type Tool = 'peipkg-build' | 'peipkg-repo' | 'peipkg-manager';

export interface ToolResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runTool(
  tool: Tool,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<ToolResult> {
  const result = await execa(process.execPath, [join(repoRoot, 'bin', `${tool}.js`), ...args], {
    reject: false,
    env: options.env,
    cwd: options.cwd,
    timeout: options.timeoutMs ?? 120_000,
    stripFinalNewline: false,
  });
  return { exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}
