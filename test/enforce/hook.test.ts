// The libvirt hook program and its installer, without libvirtd: error paths, fail-closed/open from
// the state file, the wire encoding it speaks, and the lifecycle line parser.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { vmwardenServices } from '../../proto/load.js';
import { checkStart, decodeCheckStartResponse, runHook } from '../../agent/src/enforce/hook.js';
import { hookScript, installHook } from '../../agent/src/enforce/install-hook.js';
import { parseLifecycleLine } from '../../agent/src/enforce/lifecycle.js';
import { writeEnforcementState } from '../../agent/src/enforce/state-file.js';
import { AgentConfigError, loadAgentConfig } from '../../agent/src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'vmwarden-hook-'));
const socket = join(dir, 'agent.sock');
const state = join(dir, 'enforcement.json');
const hookJs = fileURLToPath(new URL('../../agent/src/enforce/hook.js', import.meta.url));
const XML = `<domain type='qemu'><name>vm1</name><uuid>0f8fad5b-d9cb-469f-a165-70867728950e</uuid></domain>`;
let server: grpc.Server | undefined;
let lastRequest: any;

const setState = (active: boolean, failOpen = false) =>
  writeEnforcementState(state, { active, failOpen, socket, updatedAt: new Date().toISOString() });

const hook = (args: string[], stdin = XML) =>
  runHook(['--socket', socket, '--state', state, ...args], async () => stdin);

/** The real hook program as libvirtd runs it (through node), with stdin. */
function runProgram(args: string[], stdin: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [hookJs, '--socket', socket, '--state', state, ...args],
      (err, _o, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
    child.stdin!.end(stdin);
  });
}

async function startFakeAgent(answer: (req: any) => { allowed: boolean; reason: string } | Error) {
  const { Agent } = vmwardenServices();
  server = new grpc.Server();
  server.addService(Agent.service, {
    checkStart: (call: any, cb: any) => {
      lastRequest = call.request;
      const r = answer(call.request);
      if (r instanceof Error) cb({ code: grpc.status.INTERNAL, details: r.message });
      else cb(null, r);
    },
  } as never);
  await new Promise<void>((res, rej) =>
    server!.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? rej(e) : res(),
    ),
  );
}

async function stopFakeAgent() {
  await new Promise<void>((r) => (server ? server.tryShutdown(() => r()) : r()));
  server?.forceShutdown();
  server = undefined;
  rmSync(socket, { force: true });
}

test.after(async () => {
  await stopFakeAgent();
  rmSync(dir, { recursive: true, force: true });
});

test('operations other than "prepare begin" pass at once, stdin unread', async () => {
  setState(true);
  let read = false;
  for (const args of [
    ['vm1', 'start', 'begin', '-'],
    ['vm1', 'stopped', 'end', '-'],
    ['vm1', 'migrate', 'begin', '-'],
    ['vm1', 'bogus-op', 'x', '-'],
    [],
  ]) {
    const r = await runHook(['--socket', socket, '--state', state, ...args], async () => {
      read = true;
      return '';
    });
    assert.equal(r, { code: 0, message: '' });
  }
  assert.is(read, false);
});

test('agent answers: allowed → 0; refused → 1 with its reason; the request carries uuid and XML', async () => {
  await startFakeAgent((req) =>
    req.domainXml.includes('<name>bad</name>')
      ? {
          allowed: false,
          reason: "vmwarden: start of 'bad' refused: signature check failed: definition changed",
        }
      : { allowed: true, reason: 'signature verdict true' },
  );
  setState(true);
  assert.equal(await hook(['vm1', 'prepare', 'begin', '-']), { code: 0, message: '' });
  assert.is(lastRequest.serverId, '0f8fad5b-d9cb-469f-a165-70867728950e');
  assert.is(lastRequest.domainXml, XML);
  const r = await hook(['bad', 'prepare', 'begin', '-'], XML.replace('vm1', 'bad'));
  assert.is(r.code, 1);
  assert.match(r.message, 'definition changed');
  // the compiled program itself, as libvirtd runs it: one line on stderr, exit 1
  const p = await runProgram(['bad', 'prepare', 'begin', '-'], XML.replace('vm1', 'bad'));
  assert.is(p.code, 1);
  assert.is(p.stderr.trim().split('\n').length, 1);
  assert.match(p.stderr, 'definition changed');
  assert.is((await runProgram(['vm1', 'prepare', 'begin', '-'], XML)).code, 0);
});

test('malformed stdin: refused while validation is active, allowed when it is not', async () => {
  setState(true);
  for (const bad of ['', 'not xml at all', '<domain><name>x</name></domain>']) {
    const r = await hook(['vm1', 'prepare', 'begin', '-'], bad);
    assert.is(r.code, 1, bad);
    assert.match(r.message, 'malformed');
  }
  const p = await runProgram(['vm1', 'prepare', 'begin', '-'], 'garbage');
  assert.is(p.code, 1);
  assert.match(p.stderr, 'malformed');
  setState(false);
  assert.is((await hook(['vm1', 'prepare', 'begin', '-'], 'garbage')).code, 0);
});

test('agent error (gRPC status ≠ 0): fail closed when active', async () => {
  await stopFakeAgent();
  await startFakeAgent(() => new Error('boom'));
  setState(true);
  const r = await hook(['vm1', 'prepare', 'begin', '-']);
  assert.is(r.code, 1);
  assert.match(r.message, 'boom');
  setState(false);
  assert.is((await hook(['vm1', 'prepare', 'begin', '-'])).code, 0);
});

test('agent unreachable: refused when active (fail closed), allowed with failOpen, off, or no state file', async () => {
  await stopFakeAgent();
  setState(true);
  const r = await hook(['vm1', 'prepare', 'begin', '-']);
  assert.is(r.code, 1);
  assert.match(r.message, "vmwarden: start of 'vm1' refused: vmwarden agent unreachable");
  setState(true, true);
  assert.is((await hook(['vm1', 'prepare', 'begin', '-'])).code, 0);
  setState(false);
  assert.is((await hook(['vm1', 'prepare', 'begin', '-'])).code, 0);
  rmSync(state);
  assert.is((await hook(['vm1', 'prepare', 'begin', '-'])).code, 0);
  writeFileSync(state, '{garbled');
  assert.is(
    (await hook(['vm1', 'prepare', 'begin', '-'])).code,
    1,
    'an unreadable state file counts as active',
  );
});

test('checkStart against a missing socket rejects (unreachable)', async () => {
  try {
    await checkStart(join(dir, 'nope.sock'), 'x', XML);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /ENOENT|ECONNREFUSED/);
  }
});

test('decodeCheckStartResponse: protobuf fields, unknown fields skipped', () => {
  const reason = Buffer.from('no');
  const buf = Buffer.concat([
    Buffer.from([0x08, 0x01, 0x12, reason.length]),
    reason,
    Buffer.from([0x18, 0x05]),
  ]);
  assert.equal(decodeCheckStartResponse(buf), { allowed: true, reason: 'no' });
  assert.equal(decodeCheckStartResponse(Buffer.alloc(0)), { allowed: false, reason: '' });
});

test('install-hook: mode 0755, idempotent, restart advice only for a new hook in an empty dir', () => {
  const path = join(dir, 'hooks', 'qemu.d', 'vmwarden');
  const first = installHook({ socket, state, path });
  assert.is(first.change, 'created');
  assert.is(first.restartNeeded, true);
  assert.match(first.message, 'restart libvirtd');
  assert.is(statSync(path).mode & 0o777, 0o755);
  const text = readFileSync(path, 'utf8');
  assert.ok(text.startsWith('#!/bin/sh\n'));
  assert.match(text, '[ "$2" = prepare ] && [ "$3" = begin ] || exit 0');
  assert.match(text, hookJs);
  const again = installHook({ socket, state, path });
  assert.equal([again.change, again.restartNeeded], ['unchanged', false]);
  const moved = installHook({ socket: '/run/x.sock', state, path });
  assert.equal([moved.change, moved.restartNeeded], ['updated', false]);
  assert.match(hookScript({ socket: "/it's", state }), `'/it'\\''s'`);
  assert.match(hookScript({ socket, state, domains: 'vmw-*' }), 'case "$1" in vmw-*) ;; *) exit 0 ;; esac');
  assert.throws(() => hookScript({ socket, state, domains: 'x; rm -rf /' }));
});

test('the installed wrapper: other operations and out-of-scope domains pass without node', async () => {
  const path = join(dir, 'scoped', 'vmwarden');
  installHook({ socket, state, path, domains: 'vmw-*' });
  setState(true); // active, agent unreachable: in scope this is refused
  const run = (args: string[]) =>
    new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = execFile(path, args, (err, _o, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      );
      child.stdin!.end(XML);
    });
  assert.is((await run(['other-vm', 'prepare', 'begin', '-'])).code, 0);
  assert.is((await run(['vmw-1', 'release', 'end', '-'])).code, 0);
  const refused = await run(['vmw-1', 'prepare', 'begin', '-']);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, 'vmwarden agent unreachable');
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
