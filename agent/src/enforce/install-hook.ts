// `vmwarden-agent install-hook`: writes /etc/libvirt/hooks/qemu.d/vmwarden, a POSIX sh script that
// lets every operation but `prepare begin` through at once and asks the agent about that one with curl
// (HTTP/1.1 on the agent's hook.sock, see hook-endpoint.ts): a few milliseconds, no Node start-up.
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

export interface HookOptions {
  /** The agent's (gRPC) unix socket: the hook asks hook.sock next to it. */
  socket: string;
  /** The agent's enforcement.json: the hook reads enforcement.state next to it. */
  state: string;
  /** Shell glob of the domain names the hook checks (default: every domain). */
  domains?: string;
}

/**
 * The hook. Exit 0 = start; exit 1 = refused, with one line on stderr (virsh start shows it).
 * No state file (no agent ever ran with this data dir) or `inactive`: allowed without asking.
 * Agent unreachable: allowed with `active fail-open`, refused otherwise (a garbled state counts as active).
 * An answer other than `allow` / `refuse <reason>` is a refusal.
 */
export function hookScript(opts: HookOptions): string {
  if (opts.domains && /[\s'"`$\\;|&()<>]/.test(opts.domains)) throw new Error('domains must be a plain glob');
  const scope =
    opts.domains && opts.domains !== '*' ? `\ncase "$1" in ${opts.domains}) ;; *) exit 0 ;; esac` : '';
  return `#!/bin/sh
# vmwarden libvirt hook, written by \`vmwarden-agent install-hook\`. libvirtd runs it as
# <domain> <operation> <sub-operation> <extra> with the domain XML on stdin. Only "prepare begin" is
# checked: curl posts the XML to the vmwarden agent (HTTP on its unix socket), which answers
# "allow" or "refuse <reason>". It never calls libvirt (libvirtd holds the domain's lock meanwhile).
[ "$2" = prepare ] && [ "$3" = begin ] || exit 0${scope}
SOCK=${shellQuote(hookSocketPath(opts.socket))}
STATE=${shellQuote(shellStatePath(opts.state))}
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
refuse() {
  printf '%s\\n' "vmwarden: start of '$name' refused: $1" >&2
  exit 1
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
if ! answer=$(curl -q -s --max-time 30 --unix-socket "$SOCK" -H 'Content-Type: application/xml' -H 'Expect:' \\
  --data-binary @- "http://vmwarden/check-start?name=$qname"); then
  cat >/dev/null
  [ "$state" = "active fail-open" ] && exit 0
  refuse 'vmwarden agent unreachable (fail closed)'
fi
nl='
'
answer=\${answer%%"$nl"*}
case $answer in
allow) exit 0 ;;
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
  message: string;
}

/** Idempotent: rewrites the file only when its content differs; mode 0755. */
export function installHook(opts: HookOptions & { path?: string }): InstallResult {
  const path = opts.path ?? DEFAULT_HOOK_PATH;
  const dir = dirname(path);
  const dirHadHooks = existsSync(dir) && readdirSync(dir).some((f) => !f.startsWith('.'));
  const legacyHook = existsSync(join(dirname(dir), 'qemu'));
  const content = hookScript(opts);
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
      : `hook ${path} ${change}; ${restartNeeded ? 'restart libvirtd so it runs the new hook (systemctl restart libvirtd)' : 'libvirtd picks it up without a restart'}`;
  return { path, change, restartNeeded, message };
}
