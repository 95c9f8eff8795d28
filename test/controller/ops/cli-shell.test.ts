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
import { COMMANDS } from '../../../controller/src/cli/commands/table.js';

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

test('vmwarden COMMAND --help shows that command and its flags; vmwarden --help lists every command', () => {
  const top = run(CLI, ['--help']);
  assert.is(top.code, 0);
  for (const name of Object.keys(COMMANDS)) assert.ok(top.stdout.includes(`vmwarden ${name}`), name);
  const r = run(CLI, ['access', '--help']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^usage: vmwarden access request SANDBOX --key FILE/);
  for (const f of ['--key', '--ttl', '--reason', '--json']) assert.ok(r.stdout.includes(f), f);
  assert.not.ok(r.stdout.includes('vmwarden keys'));
  assert.is(run(CLI, ['help', 'node']).stdout, run(CLI, ['node', '-h']).stdout);
  assert.match(run(CLI, ['node', '-h']).stdout, /--no-wait/);
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
});

test('completion zsh is a compdef script naming every command; an unknown shell is a usage error', () => {
  const r = run(CLI, ['completion', 'zsh']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^#compdef vmwarden/);
  for (const name of Object.keys(COMMANDS)) assert.ok(r.stdout.includes(` ${name}`), name);
  const zsh = spawnSync('zsh', ['-n'], { input: r.stdout, encoding: 'utf8' });
  if (!zsh.error) assert.is(zsh.status, 0, zsh.stderr);
  const bad = run(CLI, ['completion', 'fish']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /^vmwarden: unknown shell 'fish'/);
});

test.run();
