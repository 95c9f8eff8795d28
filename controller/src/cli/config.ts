import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** What `vmwarden login` keeps: the controller URL and the API session token. */
export interface CliConfig {
  url: string;
  token: string;
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
