/**
 * What shells and operators expect of the three programs: --version, --help listing every flag (from
 * the config specs), `vmwarden COMMAND --help`, and `vmwarden completion bash|zsh` that a shell accepts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SETTINGS as CONTROLLER_SETTINGS } from '../../../controller/src/config.js';
import { SETTINGS as AGENT_SETTINGS } from '../../../agent/src/config.js';
import type { Command as Commander } from 'commander';
import { COMMANDS } from '../../../controller/src/cli/commands/table.js';

/** The commands help and completion list: all but the hidden ssh-proxy (config-ssh's ProxyCommand). */
const LISTED = Object.keys(COMMANDS).filter((name) => !COMMANDS[name]!.hidden);
import { buildProgram } from '../../../controller/src/cli/program.js';

const bin = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const CLI = bin('controller/src/cli/main.js');
const CONTROLLER = bin('controller/src/main.js');
const AGENT = bin('agent/src/main.js');
const VERSION = JSON.parse(
  readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8'),
).version;

function run(file: string, args: string[]) {
  const r = spawnSync(process.execPath, [file, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, XDG_CONFIG_HOME: '/nonexistent-vmwarden-test' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--version on all three programs prints NAME VERSION and exits 0', () => {
  for (const [file, name] of [
    [CLI, 'vmwarden'],
    [CONTROLLER, 'vmwarden-controller'],
    [AGENT, 'vmwarden-agent'],
  ] as const) {
    const r = run(file, ['--version']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, `${name} ${VERSION}\n`);
  }
});

test('the daemons --help list every flag and every environment variable, exit 0', () => {
  for (const [file, specs] of [
    [CONTROLLER, CONTROLLER_SETTINGS],
    [AGENT, AGENT_SETTINGS],
  ] as const) {
    for (const flag of ['--help', '-h']) {
      const r = run(file, [flag]);
      assert.is(r.code, 0, r.stderr);
      assert.match(r.stdout, /^usage: /);
      assert.ok(r.stdout.includes('--config FILE'));
      for (const s of Object.values(specs)) {
        if (s.flag) assert.ok(r.stdout.includes(`--${s.flag} `), `${file} --help lacks --${s.flag}`);
        assert.ok(r.stdout.includes(s.env), `${file} --help lacks ${s.env}`);
      }
    }
  }
  assert.ok(run(AGENT, ['--help']).stdout.includes('--token'));
});

/** Every command of commander's tree with its path: `access`, `access request`, … */
function everyCommand(cmd: Commander, path: string[] = []): Array<{ path: string[]; cmd: Commander }> {
  return cmd.commands
    .filter((c) => c.name() !== 'help' && !(c as unknown as { _hidden?: boolean })._hidden)
    .flatMap((c) => [{ path: [...path, c.name()], cmd: c }, ...everyCommand(c, [...path, c.name()])]);
}

test('vmwarden --help lists every command; COMMAND --help shows its flags and allowed values, exit 0', () => {
  const top = run(CLI, ['--help']);
  assert.is(top.code, 0);
  assert.match(top.stdout, /^Usage: vmwarden /);
  for (const name of [...LISTED, 'completion'])
    assert.match(top.stdout, new RegExp(`^  ${name}\\b`, 'm'), name);
  assert.not.match(top.stdout, /ssh-proxy/);
  const program = buildProgram({ out: () => {}, err: () => {} });
  const all = everyCommand(program);
  assert.ok(all.length > 30, `only ${all.length} commands`);
  for (const { path, cmd } of all) {
    const r = run(CLI, [...path, '--help']);
    assert.is(r.code, 0, `${path.join(' ')}: ${r.stderr}`);
    assert.ok(r.stdout.startsWith(`Usage: vmwarden ${path.join(' ')}`), `${path.join(' ')}: ${r.stdout}`);
    for (const o of cmd.options) {
      assert.ok(r.stdout.includes(o.long!), `${path.join(' ')} --help lacks ${o.long}`);
      for (const v of o.argChoices ?? []) assert.ok(r.stdout.includes(v), `${path.join(' ')}: ${v}`);
    }
    // the global options, on every command (ssh prints no data: its -o is ssh's)
    const globals =
      path[0] === 'completion'
        ? []
        : COMMANDS[path[0]!]?.noOutput
          ? ['--url']
          : ['--output', '--json', '--url'];
    for (const f of globals) assert.ok(r.stdout.includes(f), `${path.join(' ')}: ${f}`);
  }
  // the group's help names its subcommands' flags and their allowed values
  const access = run(CLI, ['access', '--help']);
  for (const f of ['request', '--key', '--ttl', '--reason', '--status', 'ACTIVE|EXPIRED|REVOKED'])
    assert.ok(access.stdout.includes(f), f);
  assert.not.ok(access.stdout.includes('vmwarden keys'));
  assert.match(run(CLI, ['identities', 'create', '--help']).stdout, /admin.*user.*agent/);
  assert.match(run(CLI, ['login', '--help']).stdout, /--fingerprint/);
  assert.is(run(CLI, ['help', 'node']).stdout, run(CLI, ['node', '-h']).stdout);
  assert.match(run(CLI, ['node', '-h']).stdout, /--no-wait/);
});

test('command-line errors: one line, exit 2 (not-allowed values too)', () => {
  for (const [args, pattern] of [
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['identities', 'bogus'], /unknown command 'bogus'/],
    [['whoami', '--bogus'], /unknown option '--bogus'/],
    [['identities', 'create', 'x', '--role', 'root'], /'root' is invalid.*admin, user, agent/],
    [['access', 'certs', '--status', 'GONE'], /ACTIVE, EXPIRED, REVOKED/],
    [['whoami', '-o', 'xml'], /table, json, yaml/],
    [['whoami', '--json', '-o', 'yaml'], /--json contradicts -o yaml/],
    [['grants', 'add', 'only-one'], /missing required argument 'identity'/],
  ] as const) {
    const r = run(CLI, [...args]);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trimEnd().split('\n');
    assert.is(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^vmwarden: /);
    assert.match(lines[0]!, pattern);
  }
  // a group without its subcommand: its help, on stderr, exit 2
  const bare = run(CLI, ['access']);
  assert.is(bare.code, 2);
  assert.match(bare.stderr, /^Usage: vmwarden access/);
});

/** Runs `command` in bash after sourcing the completion script (passed in the environment). */
function bash(completion: string, command: string) {
  const r = spawnSync('bash', ['-c', `source <(printf '%s' "$COMPLETION"); ${command}`], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, COMPLETION: completion },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('completion bash: bash -n accepts it; it completes commands, subcommands and flags', () => {
  const r = run(CLI, ['completion', 'bash']);
  assert.is(r.code, 0, r.stderr);
  const syntax = spawnSync('bash', ['-n'], { input: r.stdout, encoding: 'utf8' });
  assert.is(syntax.status, 0, syntax.stderr);
  const complete = (words: string[]) =>
    bash(
      r.stdout,
      `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _vmwarden; echo "\${COMPREPLY[@]}"`,
    );
  assert.is(complete(['vmwarden', 'ac']).stdout.trim(), 'access');
  assert.is(complete(['vmwarden', 'access', 're']).stdout.trim(), 'request revoke');
  assert.is(complete(['vmwarden', 'node', '']).stdout.trim(), 'activate deactivate');
  assert.is(complete(['vmwarden', 'node', 'activate', '--no']).stdout.trim(), '--no-wait');
  assert.is(complete(['vmwarden', 'comp']).stdout.trim(), 'completion');
  // allowed values of flags, and the global flags after a subcommand
  assert.is(
    complete(['vmwarden', 'identities', 'create', 'x', '--role', '']).stdout.trim(),
    'admin user agent',
  );
  assert.is(complete(['vmwarden', 'access', 'certs', '--status', 'RE']).stdout.trim(), 'REVOKED');
  assert.is(complete(['vmwarden', 'nodes', 'list', '-o', 'y']).stdout.trim(), 'yaml');
  assert.is(complete(['vmwarden', 'nodes', 'list', '--ou']).stdout.trim(), '--output');
  assert.is(complete(['vmwarden', 'help', 'gr']).stdout.trim(), 'grants');
  // every command of the tree completes at its place
  for (const { path } of everyCommand(buildProgram({ out: () => {}, err: () => {} }))) {
    const last = path[path.length - 1]!;
    const got = complete(['vmwarden', ...path.slice(0, -1), last])
      .stdout.trim()
      .split(' ');
    assert.ok(got.includes(last), `${path.join(' ')}: ${got}`);
  }
});

test('completion zsh is a compdef script naming every command; an unknown shell is a usage error', () => {
  const r = run(CLI, ['completion', 'zsh']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^#compdef vmwarden/);
  const top = /^ {4}''\) echo '([^']*)'/m.exec(r.stdout)?.[1]?.split(' ') ?? [];
  for (const name of [...LISTED, 'completion']) assert.ok(top.includes(name), name);
  const zsh = spawnSync('zsh', ['-n'], { input: r.stdout, encoding: 'utf8' });
  if (!zsh.error) assert.is(zsh.status, 0, zsh.stderr);
  const bad = run(CLI, ['completion', 'fish']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /^vmwarden: .*'fish' is invalid.*bash, zsh/);
});

test.run();
