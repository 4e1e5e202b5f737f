/**
 * Help and shell completion of the three commands, checked against each other and against what
 * the commands do: every command answers `help <command>` exactly as `<command> --help`; the flags
 * listed under "Required:" are the ones the command refuses to run without (exit 1), and no other;
 * completion offers exactly the flags the help lists; the script from `completion` works in bash.
 */

import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { runTool, type Tool } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';

const TOOLS: Tool[] = ['peipkg-build', 'peipkg-repo', 'peipkg-manager'];

/** The sections of a yargs help text: heading → its lines. */
function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const heading = /^(\S[^:]*):$/.exec(line);
    if (heading) out.set(heading[1]!, (current = []));
    else if (line.trim() === '') current = undefined;
    else current?.push(line);
  }
  return out;
}

/** `--flag` names in a help section (not `-h, --help`). */
const flagsIn = (lines: string[] = []): string[] =>
  lines.map((l) => /^\s+(?:-\w, )?--([\w-]+)/.exec(l)?.[1]).filter((f): f is string => f !== undefined && f !== 'help');

/** The subcommands a tool's help lists (`help`, `completion` and the tool's own). */
function commandsOf(tool: Tool, help: string): string[] {
  return (sections(help).get('Commands') ?? [])
    .map((l) => new RegExp(`^\\s+${tool} ([a-z][\\w-]*)`).exec(l)?.[1])
    .filter((c): c is string => c !== undefined);
}

async function help(tool: Tool, args: string[]): Promise<string> {
  const result = await runTool(tool, args);
  if (result.exitCode !== 0) throw new Error(`${tool} ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout;
}

for (const tool of TOOLS) {
  test(`${tool}: help, --help and -h agree; every command has help, and help for an unknown one is a usage error`, async (t) => {
    const top = await help(tool, ['help']);
    t.is(await help(tool, ['--help']), top);
    t.is(await help(tool, ['-h']), top);
    t.regex(top, new RegExp(`^${tool} `));
    t.regex(top, /Exit codes: 0 success, 2 wrong command line, 1 any other failure\./);
    const commands = commandsOf(tool, top);
    t.true(commands.includes('help') && commands.includes('completion'), commands.join(' '));
    for (const command of commands) {
      const text = await help(tool, ['help', command]);
      // (`help --help` is the tool's help, as yargs has it; `help help` describes `help`.)
      if (command !== 'help') t.is(await help(tool, [command, '--help']), text, `help ${command} = ${command} --help`);
      t.not(text, top, `${command} has help of its own`);
      t.regex(text, new RegExp(`^${tool} ${command}`));
    }
    const unknown = await runTool(tool, ['help', 'no-such-command']);
    t.is(unknown.exitCode, 2);
    t.is(unknown.stdout, '');
    t.regex(unknown.stderr, /unknown command "no-such-command"/);
  });

  test(`${tool}: the "Required:" flags in help are exactly those the command cannot run without`, async (t) => {
    const top = await help(tool, ['help']);
    const commands = commandsOf(tool, top).filter((c) => c !== 'help' && c !== 'completion');
    // peipkg-manager has no subcommands: its flags belong to the tool itself.
    const targets = commands.length > 0 ? commands : [undefined];
    let checked = 0;
    for (const command of targets) {
      const text = command === undefined ? top : await help(tool, ['help', command]);
      const parts = sections(text);
      const required = flagsIn(parts.get('Required'));
      const prefix = command === undefined ? [] : [command];
      const dummy = (flags: string[]): string[] => flags.flatMap((f) => [`--${f}`, 'x']);
      for (const flag of required) {
        const result = await runTool(tool, [...prefix, ...dummy(required.filter((f) => f !== flag))]);
        t.is(result.exitCode, 1, `${tool} ${command ?? ''} without --${flag}: ${result.stderr}`);
        t.regex(result.stderr, new RegExp(`--${flag} is required`));
        checked++;
      }
      if (required.length > 0) {
        const all = await runTool(tool, [...prefix, ...dummy(required)]);
        t.notRegex(all.stderr, /--[\w-]+ is required/, `${tool} ${command ?? ''} with every required flag: ${all.stderr}`);
      }
    }
    if (tool === 'peipkg-manager') t.is(checked, 0, 'peipkg-manager has defaults for everything');
    else t.true(checked > 0);
  });

  test(`${tool}: completion offers the commands and exactly the flags their help lists`, async (t) => {
    const top = await help(tool, ['help']);
    const commands = commandsOf(tool, top);
    const complete = async (...words: string[]): Promise<string[]> =>
      (await help(tool, ['--get-yargs-completions', tool, ...words])).split('\n').filter(Boolean);
    t.deepEqual((await complete('')).filter((c) => c !== '$0'), commands);
    const topFlags = [...flagsIn(sections(top).get('Options')), ...flagsIn(sections(top).get('Required'))];
    t.deepEqual((await complete('--')).sort(), ['--help', ...topFlags.map((f) => `--${f}`)].sort());
    for (const command of commands.filter((c) => c !== 'help' && c !== 'completion')) {
      const parts = sections(await help(tool, ['help', command]));
      const listed = [...flagsIn(parts.get('Required')), ...flagsIn(parts.get('Options'))];
      t.deepEqual((await complete(command, '--')).sort(), ['--help', ...listed.map((f) => `--${f}`)].sort(), command);
    }
  });

  test(`${tool}: the script from \`completion\` completes in bash`, async (t) => {
    const script = await help(tool, ['completion']);
    t.regex(script, new RegExp(`complete -o bashdefault -o default -F _${tool}_yargs_completions ${tool}`));
    // The script runs the tool by name: put a launcher for it on PATH.
    const bin = join(await tempDir(t), 'bin');
    await mkdir(bin);
    await writeFile(join(bin, tool), `#!/bin/sh\nexec "${process.execPath}" "${join(repoRoot, 'bin', `${tool}.js`)}" "$@"\n`);
    await chmod(join(bin, tool), 0o755);
    const words = tool === 'peipkg-manager' ? [tool, '--on'] : [tool, tool === 'peipkg-build' ? 'bu' : 'pu'];
    const expected = tool === 'peipkg-manager' ? '--once' : tool === 'peipkg-build' ? 'build' : 'publish';
    const run = await execa('bash', ['-c', `${script}\nCOMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}\n_${tool}_yargs_completions\nprintf '%s\\n' "\${COMPREPLY[@]}"`], {
      env: { PATH: `${bin}:${process.env.PATH ?? ''}` },
    });
    t.is(run.stdout, expected);
  });
}

test('peipkg-repo key: each subcommand has help; its "Required:" flags are exactly the ones it needs; completion offers its flags', async (t) => {
  const tool: Tool = 'peipkg-repo';
  const keyHelp = await help(tool, ['help', 'key']);
  t.is(await help(tool, ['key', '--help']), keyHelp);
  const subcommands = (sections(keyHelp).get('Commands') ?? [])
    .map((l) => /^\s+peipkg-repo key ([a-z][\w-]*)/.exec(l)?.[1])
    .filter((c): c is string => c !== undefined);
  t.deepEqual(subcommands, ['add', 'retire', 'revoke']);
  const complete = async (...words: string[]): Promise<string[]> =>
    (await help(tool, ['--get-yargs-completions', tool, ...words])).split('\n').filter(Boolean);
  t.deepEqual(await complete('key', ''), subcommands);
  for (const sub of subcommands) {
    const text = await help(tool, ['key', sub, '--help']);
    t.regex(text, new RegExp(`^${tool} key ${sub}`));
    const parts = sections(text);
    const required = flagsIn(parts.get('Required'));
    t.true(required.length > 0, sub);
    const dummy = (flags: string[]): string[] => flags.flatMap((f) => [`--${f}`, 'x']);
    for (const flag of required) {
      const result = await runTool(tool, ['key', sub, ...dummy(required.filter((f) => f !== flag))]);
      t.is(result.exitCode, 1, `key ${sub} without --${flag}: ${result.stderr}`);
      t.regex(result.stderr, new RegExp(`--${flag} is required`));
    }
    const all = await runTool(tool, ['key', sub, ...dummy(required)]);
    t.notRegex(all.stderr, /--[\w-]+ is required/, `key ${sub} with every required flag: ${all.stderr}`);
    const listed = [...required, ...flagsIn(parts.get('Options'))];
    t.deepEqual((await complete('key', sub, '--')).sort(), ['--help', ...listed.map((f) => `--${f}`)].sort(), sub);
  }
});
