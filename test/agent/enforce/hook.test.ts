// The libvirt hook (a POSIX sh script using nc.openbsd, or curl), its installer, the agent's HTTP hook
// endpoint and the state files, without libvirtd: the generated script (both clients) runs with sh
// against the real endpoint (startHookEndpoint, with a stand-in for Enforcer.checkStart) or a raw
// node:http / net server on a unix socket.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, execFileSync } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHookEndpoint, type HookEndpoint } from '../../../agent/src/enforce/hook-endpoint.js';
import { hookScript, installHook, type HookClient } from '../../../agent/src/enforce/install-hook.js';
import { parseLifecycleLine } from '../../../agent/src/enforce/lifecycle.js';
import {
  hookSocketPath,
  shellStatePath,
  stateFilePath,
  writeEnforcementState,
} from '../../../agent/src/enforce/state-file.js';
import { AgentConfigError, loadAgentConfig } from '../../../agent/src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'vmwarden-hook-'));
const socket = join(dir, 'agent.sock'); // the agent's gRPC socket: the hook asks hook.sock next to it
const hookSock = hookSocketPath(socket);
const state = stateFilePath(dir);
const CLIENTS: HookClient[] = ['nc', 'curl'];
const hookPathOf = (client: HookClient) => join(dir, 'hooks', client, 'vmwarden');
let hookPath = hookPathOf('nc');
const UUID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const XML = `<domain type='qemu'><name>vm1</name><uuid>${UUID}</uuid></domain>`;

const setState = (active: boolean, failOpen = false) =>
  writeEnforcementState(state, { active, failOpen, socket, updatedAt: new Date().toISOString() });

/** What the stand-in for Enforcer.checkStart received, and how it answers. */
let calls: Array<{ serverId: string; xml: string }> = [];
let decide: (serverId: string, xml: string) => Promise<{ allowed: boolean; reason: string }> = async () => ({
  allowed: true,
  reason: '',
});
let endpoint: HookEndpoint | undefined;
let raw: Server | import('node:net').Server | undefined;

async function startEndpoint() {
  endpoint = await startHookEndpoint(hookSock, (serverId, domain) => {
    calls.push({ serverId, xml: domain.xml });
    return decide(serverId, domain.xml);
  });
}

async function stopServers() {
  await endpoint?.close();
  endpoint = undefined;
  if (raw) await new Promise<void>((r) => raw!.close(() => r()));
  raw = undefined;
  rmSync(hookSock, { force: true });
}

/** A raw HTTP server on hook.sock answering `body` (for answers the real endpoint never gives). */
async function startRaw(status: number, body: string) {
  raw = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(body);
    });
  });
  await new Promise<void>((r) => raw!.listen(hookSock, () => r()));
}

/** The installed hook, run with sh as libvirtd runs it, XML on stdin. */
function runHook(args: string[], stdin = XML): Promise<{ code: number; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = execFile('sh', [hookPath, ...args], (err, _o, stderr) =>
      resolve({
        code: err ? ((err as { code?: number }).code ?? 1) : 0,
        stderr,
        ms: performance.now() - t0,
      }),
    );
    child.stdin!.on('error', () => undefined); // the hook may exit without reading stdin
    child.stdin!.end(stdin);
  });
}

const prepare = (name = 'vm1') => [name, 'prepare', 'begin', '-'];

/** A server on hook.sock that reads the request, writes `bytes` and closes (answers cut short, …). */
async function startRawBytes(bytes: string) {
  raw = createNetServer((conn) => {
    conn.once('data', () => conn.end(bytes));
    conn.on('error', () => undefined);
  });
  await new Promise<void>((r) => raw!.listen(hookSock, () => r()));
}

test.before(() => {
  for (const client of CLIENTS) installHook({ socket, state, path: hookPathOf(client), client });
});

test.after(async () => {
  await stopServers();
  rmSync(dir, { recursive: true, force: true });
});

test('state files: enforcement.json and the one-line enforcement.state, written atomically', () => {
  setState(true);
  assert.is(shellStatePath(state), join(dir, 'enforcement.state'));
  assert.is(readFileSync(shellStatePath(state), 'utf8'), 'active fail-closed\n');
  assert.is(JSON.parse(readFileSync(state, 'utf8')).active, true);
  setState(true, true);
  assert.is(readFileSync(shellStatePath(state), 'utf8'), 'active fail-open\n');
  setState(false, true);
  assert.is(readFileSync(shellStatePath(state), 'utf8'), 'inactive\n');
  assert.equal(
    readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
    'no temp files left behind',
  );
});

for (const client of CLIENTS) {
  test(`[${client}] the hook installed for it`, () => {
    hookPath = hookPathOf(client);
    assert.match(readFileSync(hookPath, 'utf8'), client === 'nc' ? 'nc.openbsd -U' : 'curl ');
  });

  test(`[${client}] allowed → exit 0, nothing on stderr; the agent gets the uuid and the XML as sent`, async () => {
    await stopServers();
    await startEndpoint();
    setState(true);
    calls = [];
    decide = async () => ({ allowed: true, reason: 'signature verdict true' });
    const r = await runHook(prepare());
    assert.equal([r.code, r.stderr], [0, '']);
    assert.equal(calls, [{ serverId: UUID, xml: XML }]);
    assert.is(statSync(hookSock).mode & 0o777, 0o660);
  });

  test(`[${client}] the XML reaches the agent byte for byte (UTF-8, trailing newlines)`, async () => {
    calls = [];
    decide = async () => ({ allowed: true, reason: '' });
    const xml = XML.replace('</domain>', '<description>ü 100% \\n "x"</description></domain>\n\n');
    assert.is((await runHook(prepare(), xml)).code, 0);
    assert.equal(calls, [{ serverId: UUID, xml }]);
  });

  test(`[${client}] refused → exit 1 with the agent reason as one line on stderr`, async () => {
    decide = async () => ({
      allowed: false,
      reason: "vmwarden: start of 'bad' refused: signature check failed:\n definition changed",
    });
    const r = await runHook(prepare('bad'), XML.replace('vm1', 'bad'));
    assert.is(r.code, 1);
    assert.is(r.stderr, "vmwarden: start of 'bad' refused: signature check failed: definition changed\n");
  });

  test(`[${client}] domain names with unsafe characters reach the agent intact`, async () => {
    decide = async () => ({ allowed: false, reason: '' }); // no reason: the endpoint names the domain
    const name = `we'ird na&me/ü?#%`;
    const r = await runHook(prepare(name));
    assert.is(r.code, 1);
    assert.is(r.stderr, `vmwarden: start of '${name}' refused\n`);
  });

  test(`[${client}] agent errors and malformed XML: refused with a reason`, async () => {
    decide = async () => {
      throw new Error('boom');
    };
    const e = await runHook(prepare());
    assert.is(e.code, 1);
    assert.match(e.stderr, "vmwarden: start of 'vm1' refused: vmwarden agent failed: boom");
    calls = [];
    for (const bad of ['', 'not xml at all', '<domain><name>x</name></domain>']) {
      const r = await runHook(prepare(), bad);
      assert.is(r.code, 1, bad);
      assert.match(r.stderr, "vmwarden: start of 'vm1' refused: the domain XML on stdin is malformed");
    }
    assert.equal(calls, [], 'malformed XML never reaches the enforcer');
  });
}

test('the endpoint: 404 / 405 for other requests, each answer a refusal', async () => {
  const ask = (method: string, path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ socketPath: hookSock, method, path }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  const a = await ask('GET', '/check-start?name=vm1');
  assert.is(a.status, 405);
  assert.match(a.body, /^refuse .*\n$/);
  const b = await ask('POST', '/other');
  assert.is(b.status, 404);
  assert.match(b.body, /^refuse /);
});

for (const client of CLIENTS) {
  test(`[${client}] the hook installed for it (again)`, () => {
    hookPath = hookPathOf(client);
  });

  test(`[${client}] operations other than "prepare begin" pass at once, without asking the agent`, async () => {
    setState(true);
    calls = [];
    for (const args of [
      ['vm1', 'start', 'begin', '-'],
      ['vm1', 'stopped', 'end', '-'],
      ['vm1', 'migrate', 'begin', '-'],
      ['vm1', 'prepare', 'end', '-'],
      ['vm1', 'bogus-op', 'x', '-'],
      [],
    ]) {
      const r = await runHook(args);
      assert.equal([r.code, r.stderr], [0, ''], args.join(' '));
    }
    assert.equal(calls, []);
  });

  test(`[${client}] validation inactive (or no state file): allowed without asking the agent`, async () => {
    calls = [];
    setState(false);
    assert.equal((await runHook(prepare())).code, 0);
    rmSync(state);
    rmSync(shellStatePath(state));
    assert.equal((await runHook(prepare())).code, 0);
    assert.equal(calls, []);
  });

  test(`[${client}] malformed answers are refusals`, async () => {
    await stopServers();
    setState(true, true); // even with fail-open: the agent answered, just not sensibly
    for (const [status, body] of [
      [200, 'hello\n'],
      [200, ''],
      [200, 'allowed\n'],
      [200, 'refuse \n'],
      [200, 'allow extra\n'],
      [500, 'Internal Server Error'],
    ] as const) {
      await startRaw(status, body);
      const r = await runHook(prepare());
      assert.is(r.code, 1, JSON.stringify(body));
      assert.is(
        r.stderr,
        "vmwarden: start of 'vm1' refused: unexpected answer from the vmwarden agent\n",
        JSON.stringify(body),
      );
      await stopServers();
    }
    // only the first line of an answer counts
    await startRaw(200, 'allow\nrefuse no\n');
    assert.is((await runHook(prepare())).code, 0);
    await stopServers();
  });

  test(`[${client}] an answer cut short, not HTTP, or "allow" with an error status is never an allow`, async () => {
    await stopServers();
    const cut = 'HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 40\r\n\r\nallow\n';
    for (const [bytes, failOpen, code, stderr] of [
      [cut, false, 1, 'vmwarden agent unreachable (fail closed)'],
      [cut, true, 0, ''], // cut short = the agent went away: the fail policy decides
      ['allow\n', false, 1, 'vmwarden agent unreachable (fail closed)'],
      [
        'HTTP/1.0 500 Oops\r\ncontent-length: 6\r\n\r\nallow\n',
        true,
        1,
        'unexpected answer from the vmwarden agent',
      ],
    ] as const) {
      setState(true, failOpen);
      await startRawBytes(bytes);
      const r = await runHook(prepare());
      assert.is(r.code, code, JSON.stringify(bytes));
      assert.is(r.stderr, stderr && `vmwarden: start of 'vm1' refused: ${stderr}\n`, JSON.stringify(bytes));
      await stopServers();
    }
  });

  test(`[${client}] agent unreachable: refused when active (fail closed), allowed with fail-open; garbled state = closed`, async () => {
    await stopServers();
    setState(true);
    const r = await runHook(prepare());
    assert.is(r.code, 1);
    assert.is(r.stderr, "vmwarden: start of 'vm1' refused: vmwarden agent unreachable (fail closed)\n");
    setState(true, true);
    assert.equal([(await runHook(prepare())).code, (await runHook(prepare())).stderr], [0, '']);
    writeFileSync(shellStatePath(state), 'garbled\n');
    assert.is((await runHook(prepare())).code, 1, 'an unreadable state counts as active, fail closed');
    // a socket file with nobody listening
    writeFileSync(hookSock, '');
    setState(true);
    assert.is((await runHook(prepare())).code, 1);
    rmSync(hookSock);
  });
}

test('install-hook: sh script, mode 0755, idempotent, paths quoted, restart advice only when new', () => {
  const path = join(dir, 'fresh', 'qemu.d', 'vmwarden');
  const first = installHook({ socket, state, path });
  assert.is(first.change, 'created');
  assert.is(first.restartNeeded, true);
  assert.match(first.message, 'restart libvirtd');
  assert.equal([first.client, first.message.includes('asks the agent with nc.openbsd')], ['nc', true]);
  assert.is(statSync(path).mode & 0o777, 0o755);
  const text = readFileSync(path, 'utf8');
  assert.ok(text.startsWith('#!/bin/sh\n'));
  assert.match(text, '[ "$2" = prepare ] && [ "$3" = begin ] || exit 0');
  assert.match(text, `SOCK='${hookSock}'`);
  assert.match(text, `STATE='${shellStatePath(state)}'`);
  assert.match(text, 'nc.openbsd -U', 'nc.openbsd is installed here (netcat-openbsd): the default');
  assert.not.match(text, 'node');
  const again = installHook({ socket, state, path });
  assert.equal([again.change, again.restartNeeded], ['unchanged', false]);
  const moved = installHook({ socket: '/run/x/agent.sock', state, path });
  assert.equal([moved.change, moved.restartNeeded], ['updated', false]);
  assert.match(readFileSync(path, 'utf8'), `SOCK='/run/x/hook.sock'`);
  mkdirSync(join(dir, 'other', 'qemu.d'), { recursive: true });
  writeFileSync(join(dir, 'other', 'qemu.d', 'x'), '');
  assert.is(
    installHook({ socket, state, path: join(dir, 'other', 'qemu.d', 'vmwarden') }).restartNeeded,
    false,
  );
  assert.match(hookScript({ socket: "/it's/agent.sock", state }), `SOCK='/it'\\''s/hook.sock'`);
  assert.match(hookScript({ socket, state, domains: 'vmw-*' }), 'case "$1" in vmw-*) ;; *) exit 0 ;; esac');
  assert.throws(() => hookScript({ socket, state, domains: 'x; rm -rf /' }));
  execFileSync('sh', ['-n', path]); // valid POSIX sh (dash)
});

test('the installed hook, scoped: out-of-scope domains and other operations pass; run directly', async () => {
  const path = join(dir, 'scoped', 'vmwarden');
  installHook({ socket, state, path, domains: 'vmw-*' });
  setState(true); // active, agent unreachable: in scope this is refused
  const run = (args: string[]) =>
    new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = execFile(path, args, (err, _o, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      );
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(XML);
    });
  assert.is((await run(['other-vm', 'prepare', 'begin', '-'])).code, 0);
  assert.is((await run(['vmw-1', 'release', 'end', '-'])).code, 0);
  const refused = await run(['vmw-1', 'prepare', 'begin', '-']);
  assert.is(refused.code, 1);
  assert.match(
    refused.stderr,
    "vmwarden: start of 'vmw-1' refused: vmwarden agent unreachable (fail closed)",
  );
  await startEndpoint();
  decide = async () => ({ allowed: true, reason: '' });
  assert.is((await run(['vmw-1', 'prepare', 'begin', '-'])).code, 0);
  await stopServers();
});

test('lifecycle lines from `virsh event`', () => {
  assert.equal(parseLifecycleLine("event 'lifecycle' for domain 'vm 1': Stopped Destroyed"), {
    name: 'vm 1',
    event: 'Stopped',
    detail: 'Destroyed',
  });
  assert.equal(
    parseLifecycleLine("event 'lifecycle' for domain 'a': Shutdown Finished after host request")?.event,
    'Shutdown',
  );
  assert.is(parseLifecycleLine('events received: 3'), undefined);
});

test('agent config: enforcement policies from flags/env, with defaults, and refused when unknown', () => {
  const d = loadAgentConfig(['run'], [], {}).config;
  assert.equal([d.unsignedPolicy, d.tamperPolicy, d.hookFailPolicy], ['sign', 'alert', 'closed']);
  const c = loadAgentConfig(['run', '--tamper-policy', 'shutdown'], [], {
    VMWARDEN_AGENT_UNSIGNED_POLICY: 'refuse',
    VMWARDEN_AGENT_HOOK_FAIL_POLICY: 'open',
  }).config;
  assert.equal([c.unsignedPolicy, c.tamperPolicy, c.hookFailPolicy], ['refuse', 'shutdown', 'open']);
  assert.throws(
    () => loadAgentConfig(['run', '--tamper-policy', 'explode'], [], {}),
    (e: unknown) => e instanceof AgentConfigError,
  );
});

test.run();
