/**
 * A listener that cannot open (port taken, privileged port, address not on this host) is an
 * operator's matter, not a bug: one line naming the address and the setting, and exit code 2.
 */
export class ListenError extends Error {}

const REASONS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)',
  EADDRNOTAVAIL: 'address not available on this host',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name not found',
};

/** The system error code of a failed listen; gRPC only names it inside its message. */
function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') return code;
  return /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL|ENOTFOUND|EAI_AGAIN)\b/.exec(
    String((err as Error)?.message),
  )?.[1];
}

/** `cannot listen on ADDRESS: REASON (SETTING)`, or the error itself when it is not about listening. */
export function listenError(setting: string, address: string, err: unknown): Error {
  const reason = REASONS[codeOf(err) ?? ''];
  return reason ? new ListenError(`cannot listen on ${address}: ${reason} (${setting})`) : (err as Error);
}

/** Runs `open`, turning a refused listen into a ListenError. */
export async function listenOn<T>(setting: string, address: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    throw listenError(setting, address, err);
  }
}
