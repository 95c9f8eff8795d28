import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * What `vmwarden login` keeps: the controller URL, the CA pinned for it (https), and the API
 * session token, which is only ever sent to that URL.
 */
export interface CliConfig {
  url: string;
  token: string;
  /** The controller's CA certificate (PEM), pinned at login by --fingerprint or --ca-file. */
  caPem?: string;
  username?: string;
  identityId?: string;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME?.trim()
    ? env.XDG_CONFIG_HOME
    : join(env.HOME?.trim() ? env.HOME : homedir(), '.config');
  return join(base, 'vmwarden');
}

export const configFile = (env?: NodeJS.ProcessEnv) => join(configDir(env), 'config.json');

export function loadConfig(env?: NodeJS.ProcessEnv): CliConfig | undefined {
  try {
    const c = JSON.parse(readFileSync(configFile(env), 'utf8')) as CliConfig;
    return typeof c.url === 'string' && typeof c.token === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
}

/** Same scheme, host and port (a trailing slash or path does not make another controller). */
export function sameController(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/** Directory 0700, file 0600, written through a temp file and a rename (never half-written). */
export function saveConfig(config: CliConfig, env?: NodeJS.ProcessEnv): string {
  const dir = configDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const file = configFile(env);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}
