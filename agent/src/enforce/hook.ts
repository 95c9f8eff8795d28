#!/usr/bin/env node
// The libvirt qemu hook (installed by `vmwarden-agent install-hook`). libvirtd runs it as
//   hook --socket PATH --state PATH <domain> <operation> <sub-operation> <extra>   (domain XML on stdin)
// For `prepare begin` it asks the agent's CheckStart over the unix socket and exits 1 with a one-line
// reason on stderr when the start is refused. It never calls libvirt (libvirtd holds the domain's
// lock while its hooks run). Only node built-ins: gRPC is spoken directly over HTTP/2, so the hook
// adds a few tens of milliseconds to a start.
import { connect, constants } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { readEnforcementState, type EnforcementState } from './state-file.js';

const METHOD = '/vmwarden.agent.v1.Agent/CheckStart';
const TIMEOUT_MS = Number(process.env.VMWARDEN_HOOK_TIMEOUT_MS ?? 30_000);

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

function stringField(tag: number, s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([(tag << 3) | 2, ...varint(b.length)]), b]);
}

/** CheckStartResponse { bool allowed = 1; string reason = 2; } */
export function decodeCheckStartResponse(buf: Buffer): { allowed: boolean; reason: string } {
  let i = 0;
  const readVarint = () => {
    let n = 0;
    let shift = 0;
    for (;;) {
      const b = buf[i++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
      shift += 7;
    }
  };
  const r = { allowed: false, reason: '' };
  while (i < buf.length) {
    const key = readVarint();
    const [field, type] = [key >>> 3, key & 7];
    if (type === 0) {
      const v = readVarint();
      if (field === 1) r.allowed = v !== 0;
    } else if (type === 2) {
      const len = readVarint();
      if (field === 2) r.reason = buf.subarray(i, i + len).toString('utf8');
      i += len;
    } else if (type === 1) i += 8;
    else if (type === 5) i += 4;
    else throw new Error(`bad protobuf wire type ${type}`);
  }
  return r;
}

class Unreachable extends Error {}

/** One unary gRPC call over the unix socket (h2c). */
export function checkStart(
  socket: string,
  serverId: string,
  xml: string,
): Promise<{ allowed: boolean; reason: string }> {
  const msg = Buffer.concat([stringField(1, serverId), stringField(2, xml)]);
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt32BE(msg.length, 1);
  msg.copy(frame, 5);
  return new Promise((resolve, reject) => {
    const session = connect('http://localhost', { createConnection: () => netConnect(socket) });
    const fail = (e: Error) => {
      session.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Unreachable(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    session.on('error', (e) => fail(new Unreachable(e.message)));
    const req = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: METHOD,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message = '';
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']); // trailers-only answer
      message = decodeURIComponent(String(h['grpc-message'] ?? ''));
    });
    req.on('trailers', (t) => {
      status = String(t['grpc-status'] ?? '');
      message = decodeURIComponent(String(t['grpc-message'] ?? ''));
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (e) => fail(new Unreachable(e.message)));
    req.on('end', () => {
      clearTimeout(timer);
      session.close();
      if (status !== '0') return reject(new Error(`agent error (grpc status ${status ?? '?'}): ${message}`));
      const body = Buffer.concat(chunks);
      if (body.length < 5) return reject(new Error('agent sent an empty answer'));
      resolve(decodeCheckStartResponse(body.subarray(5, 5 + body.readUInt32BE(1))));
    });
    req.end(frame);
  });
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

function parseArgs(argv: string[]): { socket: string; state: string; rest: string[] } {
  let socket = process.env.VMWARDEN_HOOK_SOCKET ?? '/run/vmwarden/agent.sock';
  let state = process.env.VMWARDEN_HOOK_STATE ?? '/var/lib/vmwarden-agent/enforcement.json';
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--socket') socket = argv[++i] ?? socket;
    else if (argv[i] === '--state') state = argv[++i] ?? state;
    else rest.push(argv[i]!);
  }
  return { socket, state, rest };
}

/** Decides; returns the exit code and what goes to stderr. */
export async function runHook(
  argv: string[],
  stdin: () => Promise<string>,
): Promise<{ code: number; message: string }> {
  const { socket, state: statePath, rest } = parseArgs(argv);
  const [name = '', op = '', subop = ''] = rest;
  if (op !== 'prepare' || subop !== 'begin') return { code: 0, message: '' };

  let state: EnforcementState | undefined;
  let stateError = '';
  try {
    state = readEnforcementState(statePath);
  } catch (e) {
    stateError = (e as Error).message;
  }
  // Fail closed only where enforcement is (or may be) on; an unreadable state file counts as on.
  const enforced = stateError ? true : Boolean(state?.active && !state.failOpen);
  const refuse = (why: string) => ({ code: 1, message: `vmwarden: start of '${name}' refused: ${why}` });
  const allow = (note: string) => ({ code: 0, message: note ? `vmwarden: ${note}` : '' });

  const xml = await stdin().catch(() => '');
  const uuid = /<uuid>\s*([0-9a-fA-F-]{32,36})\s*<\/uuid>/.exec(xml)?.[1];
  if (!uuid || !/<domain[\s>]/.test(xml)) {
    const why = 'the domain XML on stdin is malformed (no <domain> with a <uuid>)';
    return enforced ? refuse(why) : allow(`${why}; allowed: validation is not active`);
  }
  try {
    const r = await checkStart(state?.socket || socket, uuid, xml);
    if (r.allowed) return { code: 0, message: '' };
    return { code: 1, message: r.reason || `vmwarden: start of '${name}' refused` };
  } catch (e) {
    const what =
      e instanceof Unreachable
        ? `vmwarden agent unreachable at ${state?.socket || socket}`
        : 'vmwarden agent failed';
    const detail = `${what}: ${(e as Error).message}`;
    if (!enforced)
      return allow(`${detail}; allowed (${state ? 'fail-open policy or validation off' : 'no agent state'})`);
    return refuse(
      `${detail}; validation is active on this node, so starts are refused (fail closed)${stateError ? ` [state file: ${stateError}]` : ''}`,
    );
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  runHook(process.argv.slice(2), readStdin).then(
    ({ code, message }) => {
      if (message) process.stderr.write(`${message.replace(/\s*\n\s*/g, ' ')}\n`);
      process.exit(code);
    },
    (e) => {
      process.stderr.write(`vmwarden: hook error: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
