// ssh-agent: the key and its certificate are added for exactly the certificate's lifetime.
import { spawnSync } from 'node:child_process';

/** 'added', 'no-agent' (none set or it does not answer) or 'failed' (ssh-add refused the key). */
export function addToAgent(privFile: string, ttlSeconds: number): 'added' | 'no-agent' | 'failed' {
  if (!process.env.SSH_AUTH_SOCK) return 'no-agent';
  const opts = {
    stdio: 'ignore' as const,
    timeout: 10_000,
    // A passphrase-protected --identity must not hang on a prompt here: ssh asks later.
    env: { ...process.env, SSH_ASKPASS_REQUIRE: 'never', DISPLAY: '' },
  };
  // ssh-add -l: 0 = keys, 1 = no keys (the agent answered), 2 = no agent.
  const probe = spawnSync('ssh-add', ['-l'], opts);
  if (probe.status !== 0 && probe.status !== 1) return 'no-agent';
  const add = spawnSync('ssh-add', ['-q', '-t', String(Math.max(1, ttlSeconds)), privFile], opts);
  return add.status === 0 ? 'added' : 'failed';
}
