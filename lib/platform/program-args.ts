import type { SettingSpec } from './layered-config.js';

/** Flags that mean the same to both programs: they go to both. */
const SHARED = ['log-level', 'log-format'];

/**
 * One command line for two programs run in one process (`npm start`: the controller and an agent).
 * A flag goes to the program whose settings have it; one both have (`--listen-grpc`, `--data-dir`)
 * goes to the first, unless written with the second's prefix (`--agent-listen-grpc`); `--log-level`
 * and `--log-format` go to both. Anything else stays with the first, whose parser refuses it.
 */
export function splitArgs(
  argv: string[],
  first: Record<string, SettingSpec>,
  second: Record<string, SettingSpec>,
  secondPrefix = 'agent-',
): { first: string[]; second: string[] } {
  const flagsOf = (specs: Record<string, SettingSpec>) =>
    new Set(Object.values(specs).flatMap((s) => (s.flag ? [s.flag] : [])));
  const firstFlags = flagsOf(first);
  const secondFlags = flagsOf(second);
  const out = { first: [] as string[], second: [] as string[] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([^=]+)(=.*)?$/.exec(arg);
    if (!m) {
      out.first.push(arg);
      continue;
    }
    let name = m[1]!;
    const inline = m[2];
    const takesNext = inline === undefined && i + 1 < argv.length && !argv[i + 1]!.startsWith('--');
    const value = takesNext ? argv[++i] : undefined;
    const rest = inline !== undefined ? [] : value === undefined ? [] : [value];
    const flag = (n: string) => [`--${n}${inline ?? ''}`, ...rest];
    let to: Array<'first' | 'second'>;
    if (SHARED.includes(name)) to = ['first', 'second'];
    else if (name.startsWith(secondPrefix) && secondFlags.has(name.slice(secondPrefix.length))) {
      name = name.slice(secondPrefix.length);
      to = ['second'];
    } else if (!firstFlags.has(name) && secondFlags.has(name)) to = ['second'];
    else to = ['first'];
    for (const t of to) out[t].push(...flag(name));
  }
  return out;
}
