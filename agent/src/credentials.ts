import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPrivateFile, writePrivateFile } from '../../lib/platform/private-file.js';

/** What enrollment leaves in the data dir: the agent's mTLS identity and where its controller is. */
export interface Enrollment {
  nodeId: number;
  nodeName: string;
  identityId: string;
  /** The controller address enrollment went through. */
  controller: string;
  /** Every address listed at enrollment (absent in files written before there could be several). */
  controllers?: string[];
  restUrl: string;
}

export interface AgentCredentials {
  enrollment: Enrollment;
  key: string;
  cert: string;
  ca: string;
}

const files = (dir: string) => ({
  key: join(dir, 'agent.key'),
  cert: join(dir, 'agent.crt'),
  ca: join(dir, 'ca.crt'),
  enrollment: join(dir, 'enrollment.json'),
});

export function isEnrolled(dataDir: string): boolean {
  const f = files(dataDir);
  return existsSync(f.enrollment) && existsSync(f.key) && existsSync(f.cert) && existsSync(f.ca);
}

/** Loads the credentials; the private key is refused when group/others can read it. */
export function loadCredentials(dataDir: string): AgentCredentials {
  const f = files(dataDir);
  return {
    enrollment: JSON.parse(readFileSync(f.enrollment, 'utf8')),
    key: readPrivateFile(f.key).toString(),
    cert: readFileSync(f.cert, 'utf8'),
    ca: readFileSync(f.ca, 'utf8'),
  };
}

export function saveCredentials(dataDir: string, c: AgentCredentials): void {
  const f = files(dataDir);
  writePrivateFile(f.key, c.key);
  writeFileSync(f.cert, c.cert, { mode: 0o644 });
  writeFileSync(f.ca, c.ca, { mode: 0o644 });
  writeFileSync(f.enrollment, `${JSON.stringify(c.enrollment, null, 2)}\n`, { mode: 0o644 });
}
