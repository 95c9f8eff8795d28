/**
 * Bounded clean-up for `test.after` hooks: every step runs (a failing one does not skip the others),
 * and none may hold the file open past `ms`. A step that fails or hangs is reported on stderr, so a
 * test file always reaches its end instead of idling with open sockets.
 */
export async function cleanUp(
  steps: Record<string, (() => unknown) | undefined>,
  ms = 30_000,
): Promise<void> {
  for (const [name, step] of Object.entries(steps)) {
    if (!step) continue;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), ms);
    });
    try {
      const r = await Promise.race([Promise.resolve().then(step), timeout]);
      if (r === 'timeout') process.stderr.write(`clean-up: ${name} did not finish in ${ms / 1000} s\n`);
    } catch (err) {
      process.stderr.write(`clean-up: ${name} failed: ${(err as Error).message ?? err}\n`);
    } finally {
      clearTimeout(timer);
    }
  }
}
