/**
 * A listen address already taken: the real programs (separate processes) say so in one line naming
 * the address and the setting, and exit 2, without a stack trace.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { createNode } from '../../helpers/agent.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(180);

const CONTROLLER = fileURLToPath(new URL('../../../controller/src/main.js', import.meta.url));
const AGENT = fileURLToPath(new URL('../../../agent/src/main.js', import.meta.url));
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'vmwarden-busy-'));
  dirs.push(d);
  return d;
};

let busy: Server;
let taken = '';
let c: TestController;

test.before(async () => {
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  taken = `127.0.0.1:${(busy.address() as { port: number }).port}`;
  c = await startTestController();
});
test.after(async () => {
  await new Promise((resolve) => busy?.close(resolve));
  await c?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function run(
  program: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VMWARDEN_')));
    const child = spawn(process.execPath, [program, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function assertOneLine(r: { code: number | null; stderr: string }, expected: string) {
  assert.is(r.code, 2, r.stderr);
  assert.is(r.stderr, `${expected}\n`);
}

for (const [setting, flag] of [
  ['listenHttp', 'listen-http'],
  ['listenHttps', 'listen-https'],
  ['listenGrpc', 'listen-grpc'],
] as const) {
  test(`controller: ${setting} taken`, async () => {
    const flags: Record<string, string> = {
      'listen-http': '127.0.0.1:0',
      'listen-https': '127.0.0.1:0',
      'listen-grpc': '127.0.0.1:0',
      [flag]: taken,
    };
    const r = await run(CONTROLLER, [
      '--data-dir',
      tempDir(),
      ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v]),
    ]);
    assertOneLine(r, `vmwarden-controller: cannot listen on ${taken}: address already in use (${setting})`);
  });
}

test('agent: listenGrpc taken (after enrolling), then listenMetrics taken', async () => {
  const dataDir = tempDir();
  const { token } = await createNode(c, 'busy-agent');
  const common = [
    ...['--data-dir', dataDir, '--socket', join(dataDir, 'agent.sock'), '--libvirt-uri', 'test:///default'],
    ...['--controller', c.controller.endpoints.grpc!, '--log-format', 'json'],
  ];
  const grpcTaken = await run(AGENT, [
    'run',
    ...common,
    ...['--token', token, '--listen-grpc', taken, '--listen-metrics', '127.0.0.1:0'],
  ]);
  assertOneLine(grpcTaken, `vmwarden-agent: cannot listen on ${taken}: address already in use (listenGrpc)`);
  assert.match(grpcTaken.stdout, /"msg":"enrolled"/);

  const metricsTaken = await run(AGENT, [
    'run',
    ...common,
    ...['--listen-grpc', '127.0.0.1:0', '--listen-metrics', taken],
  ]);
  assertOneLine(
    metricsTaken,
    `vmwarden-agent: cannot listen on ${taken}: address already in use (listenMetrics)`,
  );
});

test.run();
