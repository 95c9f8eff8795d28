// The enforcement state the libvirt hook reads when it cannot reach the agent: without it the hook
// could not tell "validation off" (allow) from "agent down while validation is on" (fail closed).
// Kept dependency-free: the hook imports it and must start fast.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface EnforcementState {
  active: boolean;
  failOpen: boolean;
  socket: string;
  updatedAt: string;
}

export const stateFilePath = (dataDir: string) => join(dataDir, 'enforcement.json');

export function writeEnforcementState(path: string, state: EnforcementState): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o644 });
  renameSync(tmp, path);
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
