/**
 * The controller's log as a separate process: JSON lines when stdout is not a terminal, human-readable
 * lines when asked (--log-format pretty / VMWARDEN_LOG_FORMAT), with requests at debug.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { effectiveLogFormat } from '../../../lib/platform/logger.js';
import { waitFor, watchdog } from '../../helpers/wait.js';

watchdog(180);

const MAIN = fileURLToPath(new URL('../../../controller/src/main.js', import.meta.url));
const dirs: string[] = [];
test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts the controller, sends GET /version and GET /nope, stops it: everything it printed. */
async function logOf(args: string[], env: Record<string, string> = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-logfmt-'));
  dirs.push(dir);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VMWARDEN_')));
  const child = spawn(
    process.execPath,
    [
      MAIN,
      '--data-dir',
      dir,
      '--listen-http',
      '127.0.0.1:0',
      '--listen-https',
      '',
      '--listen-grpc',
      '',
      ...args,
    ],
    { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.on('exit', r));
  try {
    const http = await waitFor('the listening line', () => /listening.*?(127\.0\.0\.1:\d+)/.exec(out)?.[1], {
      timeoutMs: 60_000,
      intervalMs: 50,
      state: () => out,
    });
    assert.is((await fetch(`http://${http}/version`)).status, 200);
    assert.is((await fetch(`http://${http}/nope`)).status, 404);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  return out;
}

test('auto: stdout is no terminal, so JSON lines, requests at info', async () => {
  const out = await logOf(['--log-level', 'info']);
  const lines = out.split('\n').filter(Boolean);
  for (const line of lines) JSON.parse(line);
  assert.ok(
    lines.some((l) => JSON.parse(l).msg === 'request completed' && JSON.parse(l).level === 30),
    out,
  );
});

test('pretty when asked: readable lines, no request lines at info', async () => {
  const out = await logOf(['--log-level', 'info'], { VMWARDEN_LOG_FORMAT: 'pretty' });
  assert.not.match(out, /^\{/m, 'a JSON line');
  assert.match(out, /INFO.*Server listening at http:\/\/127\.0\.0\.1:\d+/);
  assert.match(out, /vmwarden controller listening/);
  assert.not.match(out, /request completed|incoming request|not found/);
});

test('pretty at debug shows the requests', async () => {
  const out = await logOf(['--log-level', 'debug', '--log-format', 'pretty']);
  assert.not.match(out, /^\{/m, 'a JSON line');
  assert.match(out, /DEBUG.*request completed/);
});

test('auto is pretty on a terminal only; json and pretty are what they say', () => {
  assert.is(effectiveLogFormat('auto', true), 'pretty');
  assert.is(effectiveLogFormat('auto', false), 'json');
  assert.is(effectiveLogFormat('json', true), 'json');
  assert.is(effectiveLogFormat('pretty', false), 'pretty');
});

test.run();
