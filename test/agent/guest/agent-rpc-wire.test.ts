/**
 * The libvirt RPC client's framing, on a scripted daemon (a unix socket here): replies cut into
 * single bytes and several replies in one write are read alike, calls in flight are told apart by
 * serial, an error reply becomes a LibvirtError with libvirt's number and text. The real daemon is
 * agent-rpc.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LibvirtAgentRpc, LibvirtError, XdrReader, XdrWriter } from '../../../agent/src/libvirt/agent-rpc.js';

const dir = mkdtempSync(join(tmpdir(), 'vmwarden-rpc-'));
const path = join(dir, 'libvirt-sock');
const UUID = '6f1c8a52-1b7e-4c0e-9d33-0a8e2f6b4c11';
let server: Server;
const calls: Array<{ prog: number; proc: number }> = [];

function reply(h: XdrReader, body: Buffer, status = 0): Buffer {
  const prog = h.u32();
  const vers = h.u32();
  const proc = h.i32();
  h.u32();
  const serial = h.u32();
  const head = new XdrWriter()
    .u32(28 + body.length)
    .u32(prog)
    .u32(vers)
    .i32(proc)
    .u32(1)
    .u32(serial)
    .u32(status);
  return Buffer.concat([head.done(), body]);
}

/** Answers by procedure; agent commands are answered in reverse order of arrival, byte by byte. */
function serve(socket: Socket) {
  let inbox = Buffer.alloc(0);
  let held: Buffer[] = [];
  socket.on('data', (d) => {
    inbox = Buffer.concat([inbox, d]);
    while (inbox.length >= 4 && inbox.length >= inbox.readUInt32BE(0)) {
      const msg = inbox.subarray(0, inbox.readUInt32BE(0));
      inbox = inbox.subarray(msg.length);
      const peek = new XdrReader(msg.subarray(4));
      const prog = peek.u32();
      peek.u32();
      const proc = peek.i32();
      calls.push({ prog, proc });
      const h = new XdrReader(msg.subarray(4));
      const args = new XdrReader(msg.subarray(28));
      if (proc === 66) socket.write(reply(h, new XdrWriter().u32(1).i32(0).done()));
      else if (proc === 1) socket.write(reply(h, Buffer.alloc(0)));
      else if (proc === 24) {
        const uuid = args.opaque(16);
        socket.write(reply(h, new XdrWriter().string('web-1').fixed(uuid).i32(7).done()));
      } else if (proc === 3) {
        const name = args.string();
        args.opaque(16);
        args.i32();
        const cmd = JSON.parse(args.string());
        if (cmd.execute === 'fail') {
          const err = new XdrWriter().i32(86).i32(10).optString('Guest agent is not responding').i32(2);
          socket.write(reply(h, err.done(), 1));
          continue;
        }
        held.push(
          reply(h, new XdrWriter().optString(JSON.stringify({ return: `${name}:${cmd.execute}` })).done()),
        );
        if (held.length === 2) {
          const bytes = Buffer.concat(held.reverse());
          held = [];
          for (const b of bytes) socket.write(Buffer.from([b]));
        }
      }
    }
  });
}

test.before(async () => {
  server = createServer(serve);
  await new Promise<void>((r) => server.listen(path, r));
});
test.after(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

test('auth list, open, lookup once; replies out of order and cut into bytes; errors by number', async () => {
  const rpc = new LibvirtAgentRpc(path, 'qemu:///system');
  try {
    const [a, b] = await Promise.all([
      rpc.agentCommand(UUID, '{"execute":"one"}', 5),
      rpc.agentCommand(UUID, '{"execute":"two"}', 5),
    ]);
    assert.equal([JSON.parse(a).return, JSON.parse(b).return], ['web-1:one', 'web-1:two']);
    const err = await rpc.agentCommand(UUID, '{"execute":"fail"}', 5).catch((e: unknown) => e);
    assert.instance(err, LibvirtError);
    assert.is((err as LibvirtError).code, 86);
    assert.is((err as LibvirtError).message, 'Guest agent is not responding');
    assert.equal(
      calls.map((c) => `${c.prog.toString(16)}/${c.proc}`),
      ['20008086/66', '20008086/1', '20008086/24', '20008087/3', '20008087/3', '20008087/3'],
    );
  } finally {
    rpc.close();
  }
});

test.run();
