/**
 * `npm start` (scripts/quickstart.mjs) as a process: libvirt's test driver unless asked, the agent's
 * environment variables honoured, a banner with the CA fingerprint and the CLI's next steps, Ctrl-C
 * stops it (exit 0); a taken port is one line and exit 2.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor, watchdog } from '../helpers/wait.js';

watchdog(240);

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const dirs: string[] = [];
const children = new Set<ChildProcess>();

test.after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function start(env: Record<string, string>, args: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-quickstart-'));
  dirs.push(dir);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VMWARDEN_')));
  const child = spawn(process.execPath, ['scripts/quickstart.mjs', ...args], {
    cwd: ROOT,
    env: {
      ...clean,
      VMWARDEN_DATA_DIR: join(dir, 'controller'),
      VMWARDEN_LISTEN_HTTP: '127.0.0.1:0',
      VMWARDEN_LISTEN_HTTPS: '127.0.0.1:0',
      VMWARDEN_LISTEN_GRPC: '127.0.0.1:0',
      VMWARDEN_AGENT_LISTEN_GRPC: '127.0.0.1:0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { dir, child, exited, stdout: () => stdout, stderr: () => stderr };
}

test('test:///default by default, VMWARDEN_AGENT_LISTEN_METRICS honoured, banner, Ctrl-C', async () => {
  const metricsPort = await freePort();
  const p = start({ VMWARDEN_AGENT_LISTEN_METRICS: `127.0.0.1:${metricsPort}`, VMWARDEN_LOG_FORMAT: 'json' });
  await waitFor('the banner', () => p.stdout().includes('Next, in another terminal'), {
    timeoutMs: 120_000,
    intervalMs: 100,
    state: () => `${p.stdout()}\n${p.stderr()}`,
  });
  const out = p.stdout();
  assert.match(out, /^ {2}libvirt {4}test:\/\/\/default /m);
  assert.match(out, new RegExp(`http://127\\.0\\.0\\.1:${metricsPort}/metrics \\(agent\\)`));
  const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.is(scrape.status, 200);
  assert.match(await scrape.text(), /^vmwarden_agent_signed_instances 0$/m);

  // the fingerprint to pin is the one of the CA that signs the HTTPS certificate
  const ca = new X509Certificate(readFileSync(join(p.dir, 'controller', 'pki', 'ca.crt')));
  const fingerprint = `SHA256:${createHash('sha256').update(ca.raw).digest('hex')}`;
  const https = /https:\/\/(127\.0\.0\.1:\d+)/.exec(out)![1];
  assert.ok(
    out.includes(`npx vmwarden login https://${https} --username admin --fingerprint ${fingerprint}`),
    out,
  );
  assert.not.match(out, /curl/);
  assert.match(out, /password \S+ \(first run/);
  // JSON lines when asked (and stdout is no terminal anyway); the banner is plain text
  for (const line of out.split('\n').filter((l) => l.startsWith('{'))) JSON.parse(line);

  p.child.kill('SIGINT');
  assert.is(await p.exited, 0, p.stderr());
});

test('--libvirt-uri reaches the agent; a taken port is one line and exit 2', async () => {
  const busy: Server = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const taken = `127.0.0.1:${(busy.address() as { port: number }).port}`;
  try {
    const p = start({ VMWARDEN_AGENT_LISTEN_METRICS: taken }, ['--libvirt-uri', 'test:///default']);
    assert.is(await p.exited, 2, p.stderr());
    assert.is(p.stderr(), `npm start: cannot listen on ${taken}: address already in use (listenMetrics)\n`);
    const q = start({ VMWARDEN_AGENT_LISTEN_METRICS: '' }, ['--libvirt-uri', 'qemu:///nowhere-such']);
    assert.is(await q.exited, 2, q.stderr());
    assert.match(
      q.stderr(),
      /^npm start: cannot connect to libvirt at qemu:\/\/\/nowhere-such: .*\(libvirtUri\)\n$/,
    );
  } finally {
    await new Promise((r) => busy.close(r));
  }
});

test.run();
