// The system OpenSSH client, with the terminal: its exit code is ours.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { CliError } from '../client.js';

export function runSsh(args: string[]): Promise<number> {
  // The terminal's ^C reaches ssh too (same process group): ssh decides, we wait for its exit.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  return new Promise<number>((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: 'inherit' });
    child.once('error', (err) => reject(new CliError(`cannot run ssh: ${err.message}`)));
    child.once('exit', (code, signal) => {
      const signo = signal ? (constants.signals as Record<string, number>)[signal] : undefined;
      resolve(code ?? (signo ? 128 + signo : 255));
    });
  }).finally(() => process.off('SIGINT', ignore));
}
