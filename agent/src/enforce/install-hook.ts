// `vmwarden-agent install-hook`: writes /etc/libvirt/hooks/qemu.d/vmwarden, a small shell script that
// lets every operation but `prepare begin` through at once and hands that one to hook.js.
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
import { fileURLToPath } from 'node:url';

export const DEFAULT_HOOK_PATH = '/etc/libvirt/hooks/qemu.d/vmwarden';

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface HookOptions {
  socket: string;
  state: string;
  /** Shell glob of the domain names the hook checks (default: every domain). */
  domains?: string;
  node?: string;
  hookJs?: string;
}

export function hookScript(opts: HookOptions): string {
  const hookJs = opts.hookJs ?? fileURLToPath(new URL('./hook.js', import.meta.url));
  if (opts.domains && /[\s'"`$\\;|&()<>]/.test(opts.domains)) throw new Error('domains must be a plain glob');
  const scope =
    opts.domains && opts.domains !== '*' ? `\ncase "$1" in ${opts.domains}) ;; *) exit 0 ;; esac` : '';
  return `#!/bin/sh
# vmwarden libvirt hook, written by \`vmwarden-agent install-hook\`. libvirtd runs it as
# <domain> <operation> <sub-operation> <extra> with the domain XML on stdin. Only "prepare begin"
# is checked (by the vmwarden agent, over its unix socket); everything else passes at once.
[ "$2" = prepare ] && [ "$3" = begin ] || exit 0${scope}
exec ${q(opts.node ?? process.execPath)} ${q(hookJs)} --socket ${q(opts.socket)} --state ${q(opts.state)} "$@"
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
