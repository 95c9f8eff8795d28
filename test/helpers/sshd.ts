/**
 * A real OpenSSH server on a loopback port for tests, and a client login helper.
 * sshd must run as root (privilege separation); tests log in as the current user.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { sleep, waitFor } from './wait.js';

export interface SshdOptions {
  /** Absolute path of the TrustedUserCAKeys file (one CA public key per line). */
  trustedCaKeysFile: string;
  /** Principals accepted for every user, or a map user → principals. */
  authorizedPrincipals: string[] | Record<string, string[]>;
  /** Absolute path of the RevokedKeys file (KRL); rewrite it to revoke (sshd rereads it per login). */
  revokedKeysFile?: string;
  /** Plain public-key logins: an authorized_keys file for every user (default: none). */
  authorizedKeysFile?: string;
  /** Extra sshd_config lines. */
  extraConfig?: string[];
  /** Signs the generated host public key: the certificate becomes sshd's HostCertificate. */
  hostCertificate?: (hostPublicKey: string) => Promise<string>;
  startTimeoutMs?: number;
}

export interface Sshd {
  port: number;
  dir: string;
  /** Everything sshd printed so far (LogLevel VERBOSE, -e). */
  readonly logs: string;
  /** sshd output after `mark` (a length of `logs`), once the connection's last lines arrived (at most 1 s). */
  logsSince(mark: number): Promise<string>;
  stop(): Promise<void>;
}

export interface SshLoginResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const currentUser = (): string => userInfo().username;

export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<SshLoginResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 15_000, env: opts.env ?? process.env, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.setTimeout(500, () => done(false));
  });
}

export async function startSshd(opts: SshdOptions): Promise<Sshd> {
  const dir = await mkdtemp(join(tmpdir(), 'vmwarden-sshd-'));
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = join(dir, 'host_ed25519');
  const keygen = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  if (keygen.code !== 0) throw new Error(`ssh-keygen host key failed: ${keygen.stderr}`);
  const hostCert = `${hostKey}-cert.pub`;
  if (opts.hostCertificate)
    await writeFile(hostCert, (await opts.hostCertificate(await readFile(`${hostKey}.pub`, 'utf8'))) + '\n');

  const principalsDir = join(dir, 'principals');
  await mkdir(principalsDir);
  const perUser = Array.isArray(opts.authorizedPrincipals)
    ? { [currentUser()]: opts.authorizedPrincipals }
    : opts.authorizedPrincipals;
  for (const [user, principals] of Object.entries(perUser)) {
    await writeFile(join(principalsDir, user), principals.map((p) => p + '\n').join(''));
  }

  const port = await freePort();
  const config = [
    `ListenAddress 127.0.0.1`,
    `Port ${port}`,
    `HostKey ${hostKey}`,
    ...(opts.hostCertificate ? [`HostCertificate ${hostCert}`] : []),
    `PidFile ${join(dir, 'sshd.pid')}`,
    `StrictModes no`,
    `UsePAM no`,
    `PermitRootLogin prohibit-password`,
    `PasswordAuthentication no`,
    `KbdInteractiveAuthentication no`,
    `PubkeyAuthentication yes`,
    `AuthorizedKeysFile ${opts.authorizedKeysFile ?? 'none'}`,
    `TrustedUserCAKeys ${opts.trustedCaKeysFile}`,
    `AuthorizedPrincipalsFile ${principalsDir}/%u`,
    ...(opts.revokedKeysFile ? [`RevokedKeys ${opts.revokedKeysFile}`] : []),
    `LogLevel VERBOSE`,
    ...(opts.extraConfig ?? []),
  ];
  const configFile = join(dir, 'sshd_config');
  await writeFile(configFile, config.join('\n') + '\n');

  const check = await run('/usr/sbin/sshd', ['-t', '-f', configFile]);
  if (check.code !== 0) throw new Error(`sshd -t rejected the config: ${check.stderr}`);

  let logs = '';
  let exited = false;
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (logs += d));
  child.stderr.on('data', (d) => (logs += d));
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exitPromise;
      clearTimeout(killTimer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  while (!(await canConnect(port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`sshd did not start on port ${port}${exited ? ' (exited)' : ''}:\n${logs}`);
    }
    await sleep(50);
  }
  return {
    port,
    dir,
    get logs() {
      return logs;
    },
    async logsSince(mark) {
      const closed = () => /Connection closed|Disconnected/.test(logs.slice(mark));
      await waitFor('the connection closed in the sshd log', closed, {
        timeoutMs: 1000,
        intervalMs: 25,
      }).catch(() => undefined);
      return logs.slice(mark);
    },
    stop,
  };
}

export interface SshLoginOptions {
  port: number;
  keyFile: string;
  certFile: string;
  user?: string;
  command?: string;
  timeoutMs?: number;
}

/**
 * OpenSSH client arguments for a login with exactly one key + certificate: no user config, no agent,
 * no known-hosts file, never a prompt.
 */
export function certLoginArgs(o: {
  host: string;
  port?: number;
  keyFile: string;
  certFile: string;
  user: string;
  command: string;
  connectTimeoutSeconds: number;
  /** Hide ssh's own warnings (LogLevel=ERROR). */
  quiet?: boolean;
}): string[] {
  const options = [
    'BatchMode=yes',
    'StrictHostKeyChecking=no',
    'UserKnownHostsFile=/dev/null',
    'IdentitiesOnly=yes',
    'IdentityAgent=none',
    `ConnectTimeout=${o.connectTimeoutSeconds}`,
    ...(o.quiet ? ['LogLevel=ERROR'] : []),
    `CertificateFile=${o.certFile}`,
  ];
  return [
    '-F',
    '/dev/null',
    ...options.flatMap((opt) => ['-o', opt]),
    '-i',
    o.keyFile,
    ...(o.port !== undefined ? ['-p', String(o.port)] : []),
    `${o.user}@${o.host}`,
    o.command,
  ];
}

/** Logs in with the OpenSSH client using exactly one key + certificate; never prompts. */
export function sshLogin(opts: SshLoginOptions): Promise<SshLoginResult> {
  const args = certLoginArgs({
    host: '127.0.0.1',
    port: opts.port,
    keyFile: opts.keyFile,
    certFile: opts.certFile,
    user: opts.user ?? currentUser(),
    command: opts.command ?? 'true',
    connectTimeoutSeconds: 5,
  });
  return run('ssh', args, { timeoutMs: opts.timeoutMs ?? 15_000 });
}
