// `vmwarden-agent install-hook`: writes /etc/libvirt/hooks/qemu.d/vmwarden, a POSIX sh script that
// lets every operation but `prepare begin` through at once and asks the agent about that one over its
// hook.sock (HTTP, see hook-endpoint.ts): with `nc.openbsd` (netcat-openbsd, a 40 KiB program that
// starts in about a millisecond) when it is installed, else with curl (whose start-up, loading
// libcurl and its TLS libraries, costs ~10 ms). No Node start-up either way.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { hookSocketPath, shellStatePath } from './state-file.js';
import { shellQuote } from '../shell.js';

export const DEFAULT_HOOK_PATH = '/etc/libvirt/hooks/qemu.d/vmwarden';

/** How the hook reaches hook.sock: `nc` = nc.openbsd (netcat-openbsd), `curl` = curl --unix-socket. */
export type HookClient = 'nc' | 'curl';

export interface HookOptions {
  /** The agent's (gRPC) unix socket: the hook asks hook.sock next to it. */
  socket: string;
  /** The agent's enforcement.json: the hook reads enforcement.state next to it. */
  state: string;
  /** Shell glob of the domain names the hook checks (default: every domain). */
  domains?: string;
  /** Default: `nc` when nc.openbsd is installed, else `curl`. */
  client?: HookClient;
}

/** `nc` when netcat-openbsd's nc.openbsd is installed (the hook's PATH), else `curl`. */
export function defaultHookClient(): HookClient {
  const dirs = ['/usr/local/bin', '/usr/bin', '/bin'];
  return dirs.some((d) => existsSync(join(d, 'nc.openbsd'))) ? 'nc' : 'curl';
}

// Both clients leave `resp` holding the agent's complete answer body, or call `unreachable`.
// nc: an HTTP/1.0 request (the answer then ends when the agent closes the connection; no chunked
// encoding); the XML is read whole first for its Content-Length (LC_ALL=C: ${#xml} counts bytes) and
// sent byte for byte, read by the shell itself (a `cat` would cost a fork and an exec). The answer counts only when nc exited 0, the
// header block is complete, the status line is HTTP and the body has the announced Content-Length.
const NC_ASK = `xml=
while IFS= read -r line; do xml=$xml$line$nl; done
xml=$xml$line
cr='\r'
resp=$(printf 'POST /check-start?name=%s HTTP/1.0\\r\\nHost: vmwarden\\r\\nContent-Type: application/xml\\r\\nContent-Length: %s\\r\\n\\r\\n%s' \\
  "$qname" "\${#xml}" "$xml" | nc.openbsd -U -w 30 "$SOCK" 2>/dev/null
  printf '\\n%s' "$?")
[ "\${resp##*"$nl"}" = 0 ] || unreachable
resp=\${resp%"$nl"*}
head=\${resp%%"$cr$nl$cr$nl"*}
[ "$head" != "$resp" ] || unreachable
resp=\${resp#*"$cr$nl$cr$nl"}
case $head in
"HTTP/1."[01]" "[0-9][0-9][0-9]*)
  status=\${head#HTTP/1.? }
  status=\${status%%[!0-9]*}
  ;;
*) unreachable ;;
esac
case $head in
*"$nl"[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Ll][Ee][Nn][Gg][Tt][Hh]:*)
  len=\${head#*"$nl"[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Ll][Ee][Nn][Gg][Tt][Hh]:}
  len=\${len%%"$cr"*}
  len=\${len#"\${len%%[! ]*}"}
  [ "\${#resp}" = "$len" ] || unreachable
  ;;
esac`;

// curl: fails (exit ≠ 0) on a connection error, a timeout or a short body; -w appends the status.
const CURL_ASK = `resp=$(curl -q -s --max-time 30 --unix-socket "$SOCK" -H 'Content-Type: application/xml' -H 'Expect:' \\
  -w '\\n%{http_code}' --data-binary @- "http://vmwarden/check-start?name=$qname") || { cat >/dev/null; unreachable; }
status=\${resp##*"$nl"}
resp=\${resp%"$nl"*}`;

/**
 * The hook. Exit 0 = start; exit 1 = refused, with one line on stderr (virsh start shows it).
 * No state file (no agent ever ran with this data dir) or `inactive`: allowed without asking.
 * Agent unreachable (or its answer incomplete): allowed with `active fail-open`, refused otherwise
 * (a garbled state counts as active). An answer other than `allow` / `refuse <reason>` is a refusal.
 */
export function hookScript(opts: HookOptions): string {
  if (opts.domains && /[\s'"`$\\;|&()<>]/.test(opts.domains)) throw new Error('domains must be a plain glob');
  const scope =
    opts.domains && opts.domains !== '*' ? `\ncase "$1" in ${opts.domains}) ;; *) exit 0 ;; esac` : '';
  const client = opts.client ?? defaultHookClient();
  return `#!/bin/sh
# vmwarden libvirt hook, written by \`vmwarden-agent install-hook\`. libvirtd runs it as
# <domain> <operation> <sub-operation> <extra> with the domain XML on stdin. Only "prepare begin" is
# checked: the XML goes to the vmwarden agent (HTTP on its unix socket, with ${client === 'nc' ? 'nc.openbsd' : 'curl'}), which
# answers "allow" or "refuse <reason>". It never calls libvirt (libvirtd holds the domain's lock meanwhile).
[ "$2" = prepare ] && [ "$3" = begin ] || exit 0${scope}
SOCK=${shellQuote(hookSocketPath(opts.socket))}
STATE=${shellQuote(shellStatePath(opts.state))}
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
refuse() {
  printf '%s\\n' "vmwarden: start of '$name' refused: $1" >&2
  exit 1
}
unreachable() {
  [ "$state" = "active fail-open" ] && exit 0
  refuse 'vmwarden agent unreachable (fail closed)'
}
name=$1
# no state file: no agent ever ran with this data dir
[ -e "$STATE" ] || { cat >/dev/null; exit 0; }
state=
read -r state 2>/dev/null <"$STATE"
[ "$state" = inactive ] && { cat >/dev/null; exit 0; }
case $name in
*[!A-Za-z0-9._~-]*) qname=$(printf %s "$name" | od -An -v -tx1 | tr -d ' \\n' | sed 's/../%&/g') ;;
*) qname=$name ;;
esac
nl='
'
${client === 'nc' ? NC_ASK : CURL_ASK}
answer=\${resp%%"$nl"*}
[ "$status" = 200 ] && [ "$answer" = allow ] && exit 0
case $answer in
"refuse "?*)
  printf '%s\\n' "\${answer#refuse }" >&2
  exit 1
  ;;
esac
refuse 'unexpected answer from the vmwarden agent'
`;
}

export interface InstallResult {
  path: string;
  /** created | updated | unchanged */
  change: 'created' | 'updated' | 'unchanged';
  /** libvirt reads its hook set at startup: a new file (or a first one) needs a libvirtd restart. */
  restartNeeded: boolean;
  /** How the hook asks the agent. */
  client: HookClient;
  message: string;
}

/** Idempotent: rewrites the file only when its content differs; mode 0755. */
export function installHook(opts: HookOptions & { path?: string }): InstallResult {
  const path = opts.path ?? DEFAULT_HOOK_PATH;
  const dir = dirname(path);
  const dirHadHooks = existsSync(dir) && readdirSync(dir).some((f) => !f.startsWith('.'));
  const legacyHook = existsSync(join(dirname(dir), 'qemu'));
  const client = opts.client ?? defaultHookClient();
  const content = hookScript({ ...opts, client });
  const before = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  let change: InstallResult['change'] = 'unchanged';
  if (before !== content) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, content, { mode: 0o755 });
    chmodSync(tmp, 0o755);
    renameSync(tmp, path);
    change = before === undefined ? 'created' : 'updated';
  } else chmodSync(path, 0o755);
  // libvirtd only runs hooks of a driver whose hook file or qemu.d entries existed when it started.
  const restartNeeded = change === 'created' && !dirHadHooks && !legacyHook;
  const message =
    change === 'unchanged'
      ? `hook ${path} is up to date; no libvirtd restart needed`
      : `hook ${path} ${change} (asks the agent with ${client === 'nc' ? 'nc.openbsd' : 'curl'}); ${restartNeeded ? 'restart libvirtd so it runs the new hook (systemctl restart libvirtd)' : 'libvirtd picks it up without a restart'}`;
  return { path, change, restartNeeded, client, message };
}
