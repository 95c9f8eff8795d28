import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';

export type Kind = 'string' | 'number' | 'list' | 'object';

/** How one setting can be given besides the config file: an environment variable, maybe a flag. */
export interface SettingSpec {
  kind: Kind;
  env: string;
  flag?: string;
  /** Replaces the check of `kind` for this setting: returns the value or throws ConfigError naming `source`. */
  parse?: (value: unknown, source: string) => unknown;
}

export class ConfigError extends Error {}

function coerce(key: string, spec: SettingSpec, value: unknown, source: string): unknown {
  if (spec.parse) return spec.parse(value, source);
  const kind = spec.kind;
  if (kind === 'number') {
    const n = typeof value === 'number' ? value : Number(value);
    if (!Number.isFinite(n) || n < 0)
      throw new ConfigError(`${source}: ${key} must be a non-negative number, got '${value}'`);
    return n;
  }
  if (kind === 'list') {
    if (Array.isArray(value)) return value.map(String);
    return String(value)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }
  if (kind === 'object') {
    let v = value;
    if (typeof v === 'string') {
      try {
        v = JSON.parse(v);
      } catch (err) {
        throw new ConfigError(`${source}: ${key} must be a JSON object: ${(err as Error).message}`);
      }
    }
    if (!v || typeof v !== 'object' || Array.isArray(v))
      throw new ConfigError(`${source}: ${key} must be an object`);
    return v;
  }
  if (typeof value !== 'string') throw new ConfigError(`${source}: ${key} must be a string`);
  return value;
}

/**
 * The settings of a program, layered: defaults < config file (YAML or JSON, named by --config or
 * `fileEnv`) < environment < flags. Unknown file settings, malformed values and bad flags throw
 * ConfigError. `extraFlags` are command flags that are not settings (e.g. --token).
 */
export function layerSettings<T extends object>(o: {
  argv: string[];
  env: NodeJS.ProcessEnv;
  defaults: T;
  specs: Record<keyof T, SettingSpec>;
  fileEnv: string;
  extraFlags?: string[];
  allowPositionals?: boolean;
}): { config: T; positionals: string[]; extra: Record<string, string | undefined> } {
  const specs = o.specs as Record<string, SettingSpec>;
  const options: Record<string, { type: 'string' }> = { config: { type: 'string' } };
  for (const spec of Object.values(specs)) if (spec.flag) options[spec.flag] = { type: 'string' };
  for (const f of o.extraFlags ?? []) options[f] = { type: 'string' };
  let flags: Record<string, string | undefined>;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: o.argv,
      options,
      strict: true,
      allowPositionals: o.allowPositionals ?? false,
    });
    flags = parsed.values as Record<string, string | undefined>;
    positionals = parsed.positionals;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const config = { ...o.defaults } as Record<string, unknown>;
  const file = flags.config ?? o.env[o.fileEnv];
  if (file) {
    let parsed: unknown;
    try {
      const text = readFileSync(file, 'utf8');
      parsed = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    if (parsed && typeof parsed === 'object') {
      for (const [k, v] of Object.entries(parsed)) {
        const spec = specs[k];
        if (!spec) {
          throw new ConfigError(
            `config file ${file}: unknown setting '${k}'; known: ${Object.keys(specs).join(', ')}`,
          );
        }
        config[k] = coerce(k, spec, v, `config file ${file}`);
      }
    }
  }
  for (const [k, spec] of Object.entries(specs)) {
    if (o.env[spec.env] !== undefined) config[k] = coerce(k, spec, o.env[spec.env], spec.env);
    if (spec.flag && flags[spec.flag] !== undefined)
      config[k] = coerce(k, spec, flags[spec.flag], `--${spec.flag}`);
  }
  const extra = Object.fromEntries((o.extraFlags ?? []).map((f) => [f, flags[f]]));
  return { config: config as T, positionals, extra };
}
