// The enforcement state the libvirt hook reads: without it the hook could not tell "validation off"
// (allow at once) from "agent down while validation is on" (fail closed). Two files, written together:
// enforcement.json (for people and tools) and enforcement.state, one line the shell hook reads with
// `read`: `active fail-closed`, `active fail-open` or `inactive`.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface EnforcementState {
  active: boolean;
  failOpen: boolean;
  socket: string;
  updatedAt: string;
}

export const stateFilePath = (dataDir: string) => join(dataDir, 'enforcement.json');

/** The shell-friendly state file next to `jsonPath` (enforcement.json → enforcement.state). */
export const shellStatePath = (jsonPath: string) => `${jsonPath.replace(/\.json$/, '')}.state`;

/** The HTTP/1.1 unix socket the shell hook asks (hook.sock next to the agent's gRPC socket). */
export const hookSocketPath = (agentSocket: string) => join(dirname(agentSocket), 'hook.sock');

/** The one line of enforcement.state. */
export const shellStateLine = (s: Pick<EnforcementState, 'active' | 'failOpen'>) =>
  s.active ? `active ${s.failOpen ? 'fail-open' : 'fail-closed'}` : 'inactive';

function writeAtomically(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o644 });
  renameSync(tmp, path);
}

/** Writes enforcement.json at `path` and enforcement.state next to it, each atomically (temp + rename). */
export function writeEnforcementState(path: string, state: EnforcementState): void {
  writeAtomically(path, `${JSON.stringify(state)}\n`);
  writeAtomically(shellStatePath(path), `${shellStateLine(state)}\n`);
}

/** undefined when the file is absent (no agent ever ran with this data dir). Throws when unreadable/garbled. */
export function readEnforcementState(path: string): EnforcementState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const s = JSON.parse(text) as Partial<EnforcementState>;
  return {
    active: s.active === true,
    failOpen: s.failOpen === true,
    socket: String(s.socket ?? ''),
    updatedAt: String(s.updatedAt ?? ''),
  };
}
