// What a revocation runs in a guest: one /bin/sh that installs the new KRL and ends the sessions of
// revoked certificates. Under TCG every program started in the guest costs ~100 ms, so the KRL is
// written by the guest agent itself (no program), the kills use shell builtins only (kill, read of
// /proc/PID/task/PID/children) and the only program left is the `mv` that installs the KRL.
import { createHash } from 'node:crypto';
import { shellQuote } from '../shell.js';

/**
 * Shell that ends sshd sessions given the pid sshd logged them under (the per-connection monitor):
 * the monitor is stopped first (it cannot fork any more), then its children (the unprivileged
 * `sshd: user@…` process that holds the connection, which would survive its parent) and theirs (the
 * session's shell or command) are stopped and all killed together. Without /proc/…/children
 * (a kernel without CONFIG_PROC_CHILDREN): pkill -P. Always succeeds.
 */
export function killSessions(pids: number[]): string {
  const list = pids.map((p) => Math.trunc(p)).filter((p) => p > 1);
  if (!list.length) return 'true';
  return `for p in ${list.join(' ')}; do
  kill -STOP $p 2>/dev/null || continue
  if [ -r /proc/$p/task/$p/children ]; then
    k=; read -r k < /proc/$p/task/$p/children
    [ -z "$k" ] || kill -STOP $k 2>/dev/null
    g=; for q in $k; do x=; read -r x 2>/dev/null < /proc/$q/task/$q/children; g="$g $x"; done
    kill -KILL $g $k $p 2>/dev/null
  else
    pkill -KILL -P $p; kill -KILL $p 2>/dev/null
  fi
done; true`;
}

/**
 * The slow path, when the staging file could not be written in place (a first update, an SSH
 * channel): kills the given sessions, then installs `krl` (given on its stdin) at `target`: written
 * to a temporary name next to it (mode 0644 from the umask), its SHA-256 checked against the one
 * expected (a short or damaged copy is never installed), renamed over the old one (sshd reads
 * RevokedKeys at each login: no reload). Exits 1, the old KRL kept, when the copy fails. Leaves an
 * empty staging file (`staging`, 0644) for the fast path of the next update.
 *
 * The kills come first because they start no program (under TCG the three programs of the KRL part
 * take most of the time). A login with a revoked certificate in between is killed by the next poll,
 * which reads it from the journal (poller.ts).
 */
export function krlUpdateScript(
  target: string,
  staging: string,
  krl: Buffer,
  killPids: number[],
  tmpSuffix: string,
): string {
  const digest = createHash('sha256').update(krl).digest('hex');
  const tmp = shellQuote(`${target}.vmwarden-${tmpSuffix}`);
  return `${killSessions(killPids)}
umask 022
t=${tmp}
if cat > "$t" && s=$(sha256sum < "$t") && [ "\${s%% *}" = ${digest} ] && mv -f "$t" ${shellQuote(target)}; then
  : > ${shellQuote(staging)}
else
  rm -f "$t"; echo 'KRL not installed: copy failed or damaged' >&2; exit 1
fi`;
}

/**
 * The fast path, once the agent has written the new KRL into the staging file in place (its size
 * checked, see GuestAgent.overwriteFile): kills the given sessions, renames the staging file over the
 * KRL and leaves a new empty one. One program started (mv). The staging file is only ever created
 * by a shell of ours (0644 root, in a root-only directory), never by the guest agent, which would
 * create it world-writable; an empty one is never installed.
 */
export function krlSwapScript(target: string, staging: string, killPids: number[]): string {
  const s = shellQuote(staging);
  return `${killSessions(killPids)}
umask 022
if [ -s ${s} ] && mv -f ${s} ${shellQuote(target)}; then : > ${s}; else
  echo 'KRL not installed: staging file missing or empty' >&2; exit 1
fi`;
}
