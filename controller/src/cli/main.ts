#!/usr/bin/env node
/**
 * `vmwarden`: the operator's and user's command line for a vmwarden controller.
 * Tables by default, `-o json|yaml` for scripts; errors are one line on stderr and a non-zero exit
 * (1: the action failed, 2: the command line is wrong).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CliError } from './client.js';
import { runProgram } from './program.js';

export async function main(
  argv: string[],
  out: (text: string) => void = (t) => process.stdout.write(t),
  err: (text: string) => void = (t) => process.stderr.write(t),
): Promise<number> {
  return runProgram(argv, { out, err });
}

function invokedDirectly(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  // `vmwarden … | head`: a reader that went away ends the output, not the process with a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
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
