/**
 * What the three commands share at the command line: a yargs parser configured the same way
 * (strict, `help` as a command and `--help` at every level, usage errors exit 2), and the one
 * place that turns an escaping error into a message and an exit code.
 */

import yargs, { type Argv } from 'yargs';

import { environmentError, InternalError, PeipkgError, UsageError } from './errors.js';

/** Prints `error` as `<tool>: <message>` (with a stack only for bugs) and returns its exit code. */
export function reportError(tool: string, error: unknown): number {
  const typed = environmentError(error) ?? (error instanceof PeipkgError ? error : new InternalError(String(error), { cause: error }));
  if (typed instanceof InternalError) {
    const cause = typed.cause instanceof Error ? typed.cause : typed;
    process.stderr.write(
      `${tool}: internal error: ${typed.message}\n${cause.stack ?? ''}\n` +
        `This is a bug in peipkg; please report it with the command you ran.\n`,
    );
  } else {
    process.stderr.write(`${tool}: ${typed.message}\n`);
  }
  return typed.exitCode;
}

/** The help section listing a command's required flags (checked by `requireFlags`, exit 1). */
export const REQUIRED_FLAGS = 'Required:';

/** A yargs option that takes a string value (`--flag VALUE`). */
export const valueOption = (describe: string) => ({ type: 'string' as const, requiresArg: true, describe });

/** Prints `<tool>: warning: <message>` on stderr. */
export const warnAs =
  (tool: string) =>
  (message: string): void =>
    void process.stderr.write(`${tool}: warning: ${message}\n`);

/** The flag the shell completion script passes, followed by the words typed so far. */
const COMPLETION_REQUEST = '--get-yargs-completions';

/** Declares a tool's commands and options on a parser. */
export type DeclareCommands = (parser: Argv) => Argv;

function createParser(tool: string, argv: string[], declare: DeclareCommands): Argv {
  const parser: Argv = yargs(argv)
    .scriptName(tool)
    .parserConfiguration({ 'duplicate-arguments-array': true, 'strip-aliased': true })
    .strict()
    .exitProcess(false)
    .showHelpOnFail(false)
    .wrap(Math.min(100, process.stdout.columns || 100))
    .help('help')
    .alias('help', 'h')
    .version(false)
    .fail((message, error) => {
      // yargs reports its own parse errors as `YError`s; anything else came from a command.
      if (error && error.name !== 'YError') throw error;
      throw new UsageError(`${error?.message ?? message}\nRun \`${tool} help\` for usage.`);
    });
  return declare(
    parser
      .command(
        'help [command]',
        'Show help for the tool or for one of its commands',
        (y) => y.positional('command', { type: 'string', describe: 'the command to describe' }),
        async (args) => {
          const command = typeof args.command === 'string' ? args.command : undefined;
          const text = await parse(tool, command === undefined ? ['--help'] : [command, '--help'], declare);
          // yargs answers `<unknown> --help` with the tool's own help; say so instead.
          if (command !== undefined && text === (await parse(tool, ['--help'], declare))) throw unknownCommand(tool, command);
          process.stdout.write(`${text}\n`);
        },
      )
      // A command of our own rather than yargs' `.completion()`, whose command swallows `--help`
      // and is shadowed by a default command (peipkg-manager's). The requests the script makes
      // (`--get-yargs-completions`) are answered in runTool.
      .command(
        'completion',
        `Print a shell completion script (bash; zsh or fish when $SHELL is one); install with \`${tool} completion >> ~/.bashrc\``,
        (y) => y,
        () => void yargs([]).scriptName(tool).showCompletionScript(),
      )
      .epilogue(
        `Exit codes: 0 success, 2 wrong command line, 1 any other failure.\n` +
          `Run \`${tool} help <command>\` (or \`${tool} <command> --help\`) for a command's flags.`,
      ),
  );
}

function unknownCommand(tool: string, word: string): UsageError {
  return new UsageError(`unknown command "${word}"\nRun \`${tool} help\` for the list of commands.`);
}

/** What `commandWord` and `commandNames` read from yargs, whose typings (17.x) declare neither. */
interface ParserInternals {
  getOptions?: () => { boolean?: unknown; alias?: unknown };
  getInternalMethods?: () => { getCommandInstance?: () => { getCommands?: () => unknown } };
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** The names of the commands declared on `parser` (`$0` for a default command). */
function commandNames(parser: Argv): readonly string[] | undefined {
  const names = (parser as unknown as ParserInternals).getInternalMethods?.().getCommandInstance?.().getCommands?.();
  return isStrings(names) ? names : undefined;
}

/** The tool-level boolean flags and their aliases (`help`, `h`, peipkg-manager's `once`). */
function booleanFlags(parser: Argv): Set<string> {
  const options = (parser as unknown as ParserInternals).getOptions?.();
  const booleans = new Set<string>(isStrings(options?.boolean) ? options.boolean : ['help']);
  const aliases = typeof options?.alias === 'object' && options.alias !== null ? Object.entries(options.alias) : [];
  for (const [flag, names] of aliases) if (booleans.has(flag) && isStrings(names)) for (const name of names) booleans.add(name);
  return booleans;
}

/**
 * The word of `argv` in the command's place: the first that is neither a flag nor the value of a
 * tool-level flag. As yargs does, a flag that is not boolean takes the next word as its value.
 */
function commandWord(parser: Argv, argv: readonly string[]): string | undefined {
  const booleans = booleanFlags(parser);
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') return argv[i + 1];
    if (!word.startsWith('-') || word === '-') return word;
    if (word.includes('=')) continue;
    const name = word.replace(/^--?/, '');
    const next = argv[i + 1];
    if (!booleans.has(name) && !name.startsWith('no-') && next !== undefined && !next.startsWith('-')) i++;
  }
  return undefined;
}

/**
 * A word in the command's place that names no command is an unknown command (exit 2), also for a
 * tool with a default command (peipkg-manager), where yargs would call it an unknown argument.
 */
function checkCommandWord(tool: string, argv: readonly string[], declare: DeclareCommands): void {
  const parser = createParser(tool, [...argv], declare);
  const names = commandNames(parser);
  const word = commandWord(parser, argv);
  if (names !== undefined && word !== undefined && !names.includes(word)) throw unknownCommand(tool, word);
}

function parse(tool: string, argv: string[], declare: DeclareCommands): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    createParser(tool, argv, declare)
      .parseAsync(argv, {}, (error, _args, output) => {
        if (error) reject(error instanceof Error ? error : new UsageError(String(error)));
        else resolve(output);
      })
      .catch(reject);
  });
}

/**
 * Runs a tool to completion and returns its exit code: the chosen command runs; `--help` at any
 * level prints usage to stdout; a wrong command line is a `UsageError` (2).
 */
export async function runTool(tool: string, declare: DeclareCommands, argv: string[]): Promise<number> {
  try {
    if (argv.includes(COMPLETION_REQUEST)) {
      // What the script from `<tool> completion` runs on <Tab>. yargs completes a subcommand's
      // flags by parsing again inside its builder, then prints and exits the process itself, so
      // this one request is parsed with yargs allowed to exit.
      await createParser(tool, argv, declare).exitProcess(true).parseAsync();
      return 0;
    }
    checkCommandWord(tool, argv, declare);
    const help = await parse(tool, argv, declare);
    if (help) process.stdout.write(`${help}\n`);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    return reportError(tool, error);
  }
}

/** Reads a flag that must appear at most once: yargs gives an array when it is repeated. */
export function single<T>(value: T | T[] | undefined, flag: string): T | undefined {
  if (Array.isArray(value)) {
    throw new UsageError(`--${flag} given more than once`);
  }
  return value;
}
