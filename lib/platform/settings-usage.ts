import type { SettingSpec } from './layered-config.js';

/**
 * The settings part of a daemon's --help, from the same specs that parse them (so it cannot drift):
 * every flag with its environment variable and config file key, then the settings without a flag.
 */
export function settingsUsage(specs: Record<string, SettingSpec>, fileEnv: string): string {
  const entries = Object.entries(specs);
  const flagged = entries.filter(([, s]) => s.flag);
  const width = Math.max(...flagged.map(([, s]) => s.flag!.length)) + 9;
  const lines = ['flags (each also an environment variable and a config file key):'];
  lines.push(`  ${'--config FILE'.padEnd(width)} YAML or JSON config file (${fileEnv})`);
  for (const [key, s] of flagged)
    lines.push(`  ${`--${s.flag} VALUE`.padEnd(width)} ${s.env}, config key ${key}`);
  lines.push('  --help, -h / --version');
  lines.push('settings without a flag (environment variable, config key):');
  for (const [key, s] of entries.filter(([, s]) => !s.flag)) lines.push(`  ${s.env}  ${key}`);
  return `${lines.join('\n')}\n`;
}
