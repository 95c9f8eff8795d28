import { ConfigError } from './layered-config.js';

/** "127.0.0.1:9362", "[::1]:0", ":9362" (all interfaces). Port 0 picks a free port. */
export function parseHostPort(value: string, what = 'address'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${what}: expected HOST:PORT, got '${value}'`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}
