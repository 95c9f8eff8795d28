// commander's command tree, built from the command table (commands/table.ts).
import { Argument, Command as Commander, CommanderError, Option } from 'commander';
import { CliError } from './client.js';
import { GLOBAL_OPTIONS, OPTIONS, type Ctx, type Format, type OptionName, type Values } from './context.js';
import { COMMANDS, type Action, type Command } from './commands/table.js';
import { completion } from './completion.js';
import { VERSION } from '../../../lib/platform/version.js';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

function option(name: OptionName): Option {
  const spec = OPTIONS[name];
  const o = new Option(spec.flags, spec.description);
  if ('multiple' in spec)
    o.argParser((v: string, previous: string[] | undefined) => [...(previous ?? []), v]);
  return 'choices' in spec ? o.choices(spec.choices) : o;
}

/** commander's parsed options as the table's option names (`--no-wait` is `wait: false` to commander). */
function values(leaf: Commander, names: OptionName[]): Values {
  const opts = leaf.optsWithGlobals() as Record<string, unknown>;
  const v: Record<string, unknown> = {};
  for (const name of names) {
    const o = option(name);
    const value = opts[o.attributeName()];
    if (o.negate) {
      if (value === false) v[name] = true;
    } else if (value !== undefined) v[name] = value;
  }
  return v as Values;
}

function format(v: Values): Format {
  if (v.json && v.output && v.output !== 'json') throw new CliError(`--json contradicts -o ${v.output}`, 2);
  return v.json ? 'json' : ((v.output as Format | undefined) ?? 'table');
}

/** The exit code a command's run returned (`vmwarden ssh` returns ssh's), else 0. */
interface Outcome {
  code: number;
}

function addAction(
  parent: Commander,
  name: string,
  action: Action,
  command: Command,
  io: Io,
  prefix: string[],
  outcome: Outcome,
) {
  const cmd = parent
    .command(`${name}${action.args ? ` ${action.args}` : ''}`, { hidden: command.hidden === true })
    .description(action.summary);
  // The global options are the leaf's too (the program's own are read only before the command name):
  // ssh takes -o as an ssh option, every other command as its output format.
  const globals = command.noOutput ? GLOBAL_OPTIONS.filter((o) => o === 'url') : GLOBAL_OPTIONS;
  for (const o of [...(action.options ?? []), ...globals]) cmd.addOption(option(o));
  cmd.action(async (...params: unknown[]) => {
    const leaf = params[params.length - 1] as Commander;
    const v = values(leaf, [...(action.options ?? []), ...GLOBAL_OPTIONS]);
    const fmt = format(v);
    const positional = (leaf.processedArgs as unknown[]).flatMap((a) =>
      a === undefined ? [] : Array.isArray(a) ? (a as string[]) : [String(a)],
    );
    const ctx: Ctx = {
      values: v,
      args: [...prefix, ...positional],
      out: io.out,
      format: fmt,
      json: fmt !== 'table',
    };
    const code = await command.run(ctx);
    outcome.code = typeof code === 'number' ? code : 0;
  });
  return cmd;
}

/** The program for one run: commander keeps state between parses, so every run builds its own. */
export function buildProgram(io: Io, outcome: Outcome = { code: 0 }): Commander {
  const program = new Commander('vmwarden')
    .enablePositionalOptions()
    .description("the command line for a vmwarden controller; 'vmwarden COMMAND --help' for one command")
    .version(`vmwarden ${VERSION}`, '--version', 'print the version')
    .configureHelp({ sortSubcommands: false })
    .configureOutput({
      writeOut: io.out,
      writeErr: io.err,
      // commander's errors as the CLI's: one line, `vmwarden: …`.
      outputError: (text, write) =>
        write(
          `vmwarden: ${text
            .replace(/^error: /, '')
            .trim()
            .replace(/\s*\n\s*/g, ' ')} (see 'vmwarden --help')\n`,
        ),
    })
    .exitOverride()
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      '\nconfig: $XDG_CONFIG_HOME/vmwarden/config.json (or ~/.config/vmwarden), mode 0600',
    );
  for (const o of GLOBAL_OPTIONS) program.addOption(option(o));
  for (const [name, c] of Object.entries(COMMANDS)) {
    if (!c.subcommands) {
      addAction(program, name, c, c, io, [], outcome);
      continue;
    }
    const group = program.command(name).description(c.summary);
    for (const [sub, a] of Object.entries(c.subcommands)) addAction(group, sub, a, c, io, [sub], outcome);
    group.addHelpText('after', () => subcommandDetails(group));
  }
  program
    .command('completion')
    .description('print a shell completion script')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
    .action((shell: string) => io.out(completion(program, shell)));
  return program;
}

/** A group's help also lists each subcommand's own options, so `vmwarden access --help` shows them all. */
function subcommandDetails(group: Commander): string {
  const lines: string[] = ['', 'Subcommand options:'];
  for (const sub of group.commands) {
    const opts = sub.options.map((o) => `${o.flags}${o.argChoices ? ` (${o.argChoices.join('|')})` : ''}`);
    if (opts.length) lines.push(`  ${sub.name()}: ${opts.join(', ')}`);
  }
  return lines.length > 2 ? `${lines.join('\n')}\n` : '';
}

/** Runs one command line; resolves to the exit code (0 ok, 2 command line wrong); failures throw CliError. */
export async function runProgram(argv: string[], io: Io): Promise<number> {
  const outcome = { code: 0 };
  const program = buildProgram(io, outcome);
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return outcome.code;
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.exitCode === 0) return 0;
    // A group without its subcommand prints its help on stderr: a usage error, like any other.
    return 2;
  }
}
