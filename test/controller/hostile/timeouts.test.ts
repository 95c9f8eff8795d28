/**
 * A client that trickles its headers or its body is cut after a bounded time, on HTTP and HTTPS,
 * and answered 408 in an error envelope. The bounds are configured short here (1 s headers, 2 s
 * whole request); the assertion only catches a missing mechanism (cut within 15 s, where an
 * unbounded server would keep the connection for as long as the client trickles).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { watchdog, sleep } from '../../helpers/wait.js';

watchdog(120);

let c: TestController;

test.before(async () => {
  c = await startTestController({ httpHeadersTimeoutSeconds: 1, httpRequestTimeoutSeconds: 2 });
});
test.after(async () => c.destroy());

const BOUND_MS = 15_000;
const TRICKLE_MS = 250;

function open(tls: boolean): Promise<Socket> {
  const url = new URL(tls ? c.httpsBase : c.httpBase);
  return new Promise((resolve, reject) => {
    const socket: Socket = tls
      ? tlsConnect({ host: url.hostname, port: Number(url.port), ca: c.caPem, servername: 'localhost' }, () =>
          resolve(socket),
        )
      : netConnect({ host: url.hostname, port: Number(url.port) }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/**
 * Sends `head` at once, then `trickle` one byte every TRICKLE_MS until the server closes the
 * connection. Returns what the server sent and how long the connection lived.
 */
async function trickle(tls: boolean, head: string, trickle: string) {
  const socket = await open(tls);
  const started = Date.now();
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('utf8')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(head);
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable) return;
    socket.write(trickle[i % trickle.length]!);
    i++;
  }, TRICKLE_MS);
  const bound = new Promise<'bound'>((resolve) => setTimeout(() => resolve('bound'), BOUND_MS).unref());
  const outcome = await Promise.race([closed.then(() => 'closed' as const), bound]);
  clearInterval(timer);
  socket.destroy();
  return { outcome, ms: Date.now() - started, received, bytes: i };
}

for (const tls of [false, true]) {
  const scheme = tls ? 'HTTPS' : 'HTTP';

  test(`${scheme}: a trickled body is cut (408) within the bound`, async () => {
    const head =
      'POST /authenticate?method=password HTTP/1.1\r\nHost: localhost\r\n' +
      'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"username":"';
    const r = await trickle(tls, head, 'abcdefghij');
    assert.is(r.outcome, 'closed', `${scheme}: still open after ${BOUND_MS} ms (${r.bytes} bytes trickled)`);
    assert.match(
      r.received,
      /^HTTP\/1\.1 408 /,
      `${scheme}: got ${JSON.stringify(r.received.slice(0, 200))}`,
    );
    assert.not.match(r.received, /"statusCode"/);
    assert.match(r.received, /REQUEST_TIMEOUT/);
  });

  test(`${scheme}: trickled headers are cut (408) within the bound`, async () => {
    const r = await trickle(tls, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ', 'abcdefghij');
    assert.is(r.outcome, 'closed', `${scheme}: still open after ${BOUND_MS} ms (${r.bytes} bytes trickled)`);
    assert.match(
      r.received,
      /^HTTP\/1\.1 408 /,
      `${scheme}: got ${JSON.stringify(r.received.slice(0, 200))}`,
    );
    assert.not.match(r.received, /"statusCode"/);
  });
}

test('a prompt client on the same listeners is unaffected', async () => {
  const r = await c.call('GET', '/healthz');
  assert.is(r.status, 200);
  const s = await c.callTls('GET', '/healthz');
  assert.is(s.status, 200);
  // A keep-alive connection idle between requests is not a trickling request.
  const socket = await open(false);
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('utf8')));
  socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await sleep(2500);
  socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  assert.is(received.match(/HTTP\/1\.1 200 /g)?.length, 2, received);
});

test.run();
