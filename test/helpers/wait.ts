/**
 * Waiting in tests: a plain sleep, a bounded poll whose timeout says what it waited for, and a
 * watchdog that ends a hung test file (uvu has no timeouts of its own).
 */

type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface WaitOptions {
  /** Default 20 s. */
  timeoutMs?: number;
  /** Pause between polls; default 100 ms. */
  intervalMs?: number;
  /** A poll that throws counts as "not yet" (the last error is named on timeout) instead of failing. */
  retryErrors?: boolean;
  /** Read on timeout and put in the error, to say what the system showed last. */
  state?: () => unknown;
}

/**
 * Polls `check` until it returns a truthy value and returns that value; after `timeoutMs` throws
 * "timed out after N ms waiting for <what>" plus the last error and `state()` when there are any.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  opts: WaitOptions = {},
): Promise<Truthy<T>> {
  const { timeoutMs = 20_000, intervalMs = 100 } = opts;
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as Truthy<T>;
    } catch (err) {
      if (!opts.retryErrors) throw err;
      lastError = err;
    }
    if (Date.now() >= end) break;
    await sleep(intervalMs);
  }
  let message = `timed out after ${timeoutMs} ms waiting for ${what}`;
  if (lastError !== undefined) message += `; last error: ${(lastError as Error)?.message ?? lastError}`;
  if (opts.state) {
    const last = await Promise.resolve()
      .then(opts.state)
      .catch((err) => String(err));
    message += `; last state: ${JSON.stringify(last)}`;
  }
  throw new Error(message);
}

/**
 * Ends the test process when the file has not finished within `seconds`; `beforeExit` runs first
 * (e.g. to kill children the file started).
 */
export function watchdog(seconds: number, beforeExit?: () => void): void {
  const t = setTimeout(() => {
    process.stderr.write(`watchdog: test file still running after ${seconds}s, aborting\n`);
    beforeExit?.();
    process.exit(1);
  }, seconds * 1000);
  t.unref();
}
