import * as grpc from '@grpc/grpc-js';

let installed = false;

/**
 * grpc-js prints a line of its own ("E No address added out of total 1 resolved") when a bind
 * fails, before the error reaches the caller, which reports it (ListenError: one line, exit 2).
 * This keeps grpc-js's other messages, on stderr as before, and drops that one.
 */
export function dropGrpcBindFailureLine(): void {
  if (installed) return;
  installed = true;
  const print =
    (prefix: string) =>
    (message?: unknown, ...rest: unknown[]) => {
      if (typeof message === 'string' && message.startsWith('No address added out of total')) return;
      console.error(`${prefix} ${String(message)}`, ...rest);
    };
  grpc.setLogger({ error: print('E'), info: print('I'), debug: print('D') });
}
