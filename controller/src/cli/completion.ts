// Shell completion scripts generated from commander's command tree: commands, subcommands, flags and
// the allowed values of flags that have them (roles, statuses, output formats).
import type { Command, Option } from 'commander';
import { usage } from './context.js';

interface Node {
  key: string;
  subs: string[];
  flags: string[];
}

const visible = (c: Command) => c.commands.filter((s) => !(s as unknown as { _hidden?: boolean })._hidden);
const longFlag = (o: Option) => o.long ?? o.short ?? '';

function walk(cmd: Command, key: string, globals: readonly Option[], acc: Node[]): Node[] {
  const subs = visible(cmd).map((s) => s.name());
  if (subs.length && key === '') subs.push('help');
  const flags = [...cmd.options, ...globals].map(longFlag).filter(Boolean);
  acc.push({ key, subs, flags: [...new Set([...flags, '--help'])] });
  for (const s of visible(cmd)) walk(s, key ? `${key} ${s.name()}` : s.name(), globals, acc);
  // `vmwarden help COMMAND`
  if (key === '') acc.push({ key: 'help', subs: subs.filter((s) => s !== 'help'), flags: [] });
  return acc;
}

/** Every option with choices anywhere in the tree, by flag (one catalogue: a flag means one thing). */
function choices(cmd: Command, acc = new Map<string, string[]>()): Map<string, string[]> {
  for (const o of cmd.options)
    if (o.argChoices) for (const f of [o.long, o.short]) if (f) acc.set(f, o.argChoices);
  for (const s of cmd.commands) choices(s, acc);
  return acc;
}

const q = (s: string) => `'${s}'`;

/** Helpers both shells run: POSIX `case` tables of subcommands, flags and flag values. */
function tables(program: Command): string {
  const nodes = walk(
    program,
    '',
    program.options.filter((o) => o.long !== '--version'),
    [],
  );
  const caseOf = (name: string, rows: Array<[string, string[]]>) =>
    `${name}() {\n  case "$1" in\n${rows.map(([k, v]) => `    ${q(k)}) echo ${q(v.join(' '))} ;;`).join('\n')}\n  esac\n}\n`;
  // Top-level options apply after the command too (vmwarden nodes list -o yaml).
  const globals = program.options.map(longFlag);
  return [
    caseOf(
      '_vmwarden_subs',
      nodes.filter((n) => n.subs.length).map((n) => [n.key, n.subs]),
    ),
    caseOf(
      '_vmwarden_flags',
      nodes.map((n) => [n.key, n.flags.length ? n.flags : globals]),
    ),
    caseOf(
      '_vmwarden_values',
      [...choices(program)].map(([f, v]) => [f, v]),
    ),
  ].join('');
}

function bash(program: Command): string {
  return `# vmwarden bash completion: source <(vmwarden completion bash)
${tables(program)}_vmwarden() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev='' key='' w i vals subs
  [ "$COMP_CWORD" -gt 0 ] && prev=\${COMP_WORDS[COMP_CWORD-1]}
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case " $(_vmwarden_subs "$key") " in *" $w "*) key=\${key:+$key }$w ;; esac
  done
  vals=$(_vmwarden_values "$prev")
  if [ -n "$vals" ]; then
    COMPREPLY=($(compgen -W "$vals" -- "$cur"))
  elif [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_vmwarden_flags "$key")" -- "$cur"))
  else
    subs=$(_vmwarden_subs "$key")
    if [ -n "$subs" ]; then COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    else COMPREPLY=($(compgen -f -- "$cur")); fi
  fi
}
complete -F _vmwarden vmwarden
`;
}

function zsh(program: Command): string {
  return `#compdef vmwarden
# vmwarden zsh completion: source <(vmwarden completion zsh), or save as _vmwarden in $fpath
${tables(program)}_vmwarden() {
  local key='' w i vals subs
  for (( i = 2; i < CURRENT; i++ )); do
    w=\${words[i]}
    case " $(_vmwarden_subs "$key") " in *" $w "*) key=\${key:+$key }$w ;; esac
  done
  vals=$(_vmwarden_values "\${words[CURRENT-1]}")
  if [[ -n $vals ]]; then compadd -- \${=vals}; return; fi
  if [[ \${words[CURRENT]} == -* ]]; then compadd -- \${=$(_vmwarden_flags "$key")}; return; fi
  subs=$(_vmwarden_subs "$key")
  if [[ -n $subs ]]; then compadd -- \${=subs}; else _files; fi
}
compdef _vmwarden vmwarden
`;
}

export function completion(program: Command, shell: string | undefined): string {
  if (shell === 'bash') return bash(program);
  if (shell === 'zsh') return zsh(program);
  throw usage(shell ? `unknown shell '${shell}' (bash or zsh)` : 'completion needs a shell: bash or zsh');
}
