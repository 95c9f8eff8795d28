// The ProxyCommand's data path: stdin → TCP → stdout, until either side closes.
import { connect } from 'node:net';
import { CliError } from '../client.js';

export function pipeStdio(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      process.stdin.pipe(socket);
      socket.pipe(process.stdout);
    });
    socket.once('error', (err: NodeJS.ErrnoException) =>
      reject(new CliError(`cannot connect to ${host}:${port}: ${err.code ?? err.message}`)),
    );
    socket.once('close', () => {
      process.stdin.unpipe(socket);
      process.stdin.destroy();
      resolve();
    });
  });
}
