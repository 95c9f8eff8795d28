// Shell completion scripts generated from the command table: commands, their subcommands and flags.
import { COMMANDS, GLOBAL_FLAGS } from './commands/table.js';
import { usage } from './context.js';

const flagsOf = (name: string) => [...COMMANDS[name]!.flags, ...GLOBAL_FLAGS].map((f) => `--${f}`).join(' ');

function bash(): string {
  const cases = Object.entries(COMMANDS)
    .map(([name, c]) => `    ${name}) subs='${c.subcommands.join(' ')}'; flags='${flagsOf(name)}' ;;`)
    .join('\n');
  return `# vmwarden bash completion: source <(vmwarden completion bash)
_vmwarden() {
  local cur=\${COMP_WORDS[COMP_CWORD]} subs='' flags='${GLOBAL_FLAGS.map((f) => `--${f}`).join(' ')}'
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W '${Object.keys(COMMANDS).join(' ')} help' -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [ "$COMP_CWORD" -eq 2 ]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _vmwarden vmwarden
`;
}

function zsh(): string {
  const cases = Object.entries(COMMANDS)
    .map(
      ([name, c]) =>
        `    ${name}) if [[ $words[CURRENT] == -* ]]; then compadd -- ${flagsOf(name)}; elif (( CURRENT == 3 )); then compadd -- ${c.subcommands.join(' ')}; else _files; fi ;;`,
    )
    .join('\n');
  return `#compdef vmwarden
# vmwarden zsh completion: source <(vmwarden completion zsh), or save as _vmwarden in $fpath
_vmwarden() {
  if (( CURRENT == 2 )); then
    compadd -- ${Object.keys(COMMANDS).join(' ')} help
    return
  fi
  case $words[2] in
${cases}
  esac
}
compdef _vmwarden vmwarden
`;
}

export function completion(shell: string | undefined): string {
  if (shell === 'bash') return bash();
  if (shell === 'zsh') return zsh();
  throw usage(shell ? `unknown shell '${shell}' (bash or zsh)` : 'completion needs a shell: bash or zsh');
}
