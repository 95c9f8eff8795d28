#!/usr/bin/env node
/**
 * `vmwarden`: the operator's and user's command line for a vmwarden controller.
 * Human tables by default, `--json` for scripts; errors are one line on stderr and a non-zero exit
 * (1: the action failed, 2: the command line is wrong).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CliError } from './client.js';
import { OPTIONS, usage, type Values } from './context.js';
import { COMMANDS, HIDDEN_COMMANDS, commandHelp } from './commands/table.js';
import { completion } from './completion.js';
import { VERSION } from '../../../lib/platform/version.js';

const USAGE = `usage: vmwarden <command> [options]

${Object.entries(COMMANDS)
  .map(
    ([name, c]) =>
      `  ${name.padEnd(11)} ${c.summary}\n${c.forms.map((f) => `      vmwarden ${name} ${f}`.trimEnd() + '\n').join('')}`,
  )
  .join('')}
options: --json (machine output), --url URL (override the stored controller), --help, --version
'vmwarden COMMAND --help' shows one command's flags
config: $XDG_CONFIG_HOME/vmwarden/config.json (or ~/.config/vmwarden), mode 0600
`;

export async function main(
  argv: string[],
  out: (text: string) => void = (t) => process.stdout.write(t),
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw usage((err as Error).message.split('\n')[0]!);
  }
  const values = parsed.values as Values;
  const [command, ...args] = parsed.positionals;
  if (values.version) {
    out(`vmwarden ${VERSION}\n`);
    return 0;
  }
  if (command && values.help && COMMANDS[command]) {
    out(commandHelp(command));
    return 0;
  }
  if (command === 'help' && args[0] && COMMANDS[args[0]]) {
    out(commandHelp(args[0]));
    return 0;
  }
  if (values.help || !command || command === 'help') {
    out(USAGE);
    return command || values.help ? 0 : 2;
  }
  if (command === 'completion') {
    out(completion(args[0]));
    return 0;
  }
  const cmd = COMMANDS[command] ?? HIDDEN_COMMANDS[command];
  if (!cmd) throw usage(`unknown command '${command}'`);
  // `vmwarden ssh` returns ssh's exit code; the other commands return nothing (0).
  const code = await cmd.run({ values, args, out, json: values.json === true });
  return typeof code === 'number' ? code : 0;
}

function invokedDirectly(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      const e = err instanceof CliError ? err : new CliError((err as Error)?.message ?? String(err));
      process.stderr.write(`vmwarden: ${e.message.replace(/\s*\n\s*/g, ' ')}\n`);
      process.exitCode = e.exitCode;
    },
  );
}
