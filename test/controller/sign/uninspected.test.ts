// Issue 15: is_valid is "true" only when everything the manifest names was inspected. A network
// disk makes it "unknown", with the reason in the detail view, the manifest view, the CLI and the
// /metrics gauge; a block-device disk (a loop device standing in for an LVM volume) is inspected.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { judged } from '../../../controller/src/sign/service.js';
import { defineTestDomain, flipByte, MiB, type TestDomain } from '../../helpers/agent.js';
import { attachLoop, detachAll, loopUnavailable } from '../../helpers/loop.js';
import { assertSignShape, httpCall, SIGN_KEYS, signNode, type SignNode } from './util.js';

const CLI = fileURLToPath(new URL('../../../controller/src/cli/main.js', import.meta.url));
const REASON = 'disk vdc: network disk (rbd pool/image) not inspected';
const NET = `
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/image'><host name='ceph1' port='6789'/></source>
      <target dev='vdc' bus='virtio'/>
    </disk>`;

const loopSkip = loopUnavailable();
let node: SignNode;
let net: TestDomain;
let blk: TestDomain | undefined;
let dev = '';
let cliHome = '';
let lvDir = '';

test.before(async () => {
  node = await signNode('gap-node', []);
  net = await defineTestDomain(node.a.hypervisor, 'vm-rbd', { extraDevices: NET });
  node.vms.push(net);
  if (!loopSkip) {
    lvDir = mkdtempSync(join(tmpdir(), 'vmwarden-lv-'));
    const image = join(lvDir, 'lv.img');
    writeFileSync(image, randomBytes(2 * MiB));
    dev = attachLoop(image);
    const block = `
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='${dev}'/>
      <target dev='vdc' bus='virtio'/>
    </disk>`;
    blk = await defineTestDomain(node.a.hypervisor, 'vm-lvm', { extraDevices: block });
    node.vms.push(blk);
  }
  await node.a.agent.report();
  cliHome = mkdtempSync(join(tmpdir(), 'vmwarden-cli-gap-'));
});

test.after(async () => {
  detachAll(); // always, also after a failed test
  await node?.destroy();
  for (const d of [cliHome, lvDir]) if (d) rmSync(d, { recursive: true, force: true });
});

const metric = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
};

test('POST and GET /v1/sign/{id} with a network disk: "unknown", and the reason beside it', async () => {
  const { c, admin } = node;
  const created = await httpCall(c, 'POST', '/v1/sign', { token: admin, body: { server_id: net.uuid } });
  assert.is(created.status, 200, created.text);
  assert.is(created.body.sign.is_valid, 'unknown');
  assert.equal(created.body.sign.uninspected, [REASON]);

  const r = await httpCall(c, 'GET', `/v1/sign/${net.uuid}`, { token: admin });
  assert.is(r.status, 200, r.text);
  const { uninspected, ...documented } = r.body.sign;
  assertSignShape(documented); // the document's fields, exactly; `uninspected` only beside "unknown"
  assert.equal(Object.keys(r.body.sign).sort(), [...SIGN_KEYS, 'uninspected'].sort());
  assert.is(r.body.sign.is_valid, 'unknown');
  assert.equal(uninspected, [REASON]);

  const list = await httpCall(c, 'GET', '/v1/sign', { token: admin });
  const row = list.body.signs.find((s: any) => s.server_id === net.uuid);
  assertSignShape(row);
  assert.is(row.is_valid, 'unknown');
});

test('the manifest view says what was not inspected', async () => {
  const r = await httpCall(node.c, 'GET', `/v1/sign/${net.uuid}/manifest`, { token: node.admin });
  assert.is(r.status, 200, r.text);
  assert.is(r.body.is_valid, 'unknown');
  assert.equal(r.body.uninspected, [REASON]);
  assert.equal(r.body.manifest.unsupported, [REASON]);
  assert.equal(r.body.differences, []);
});

test('metrics: the controller gauge counts it unknown; the agent counts its uninspected part', async () => {
  const text = (await node.c.call('GET', '/metrics')).text;
  assert.is(metric(text, 'vmwarden_signatures{is_valid="unknown"}'), 1, text);
  assert.is(metric(text, 'vmwarden_signatures{is_valid="true"}'), 0);
  const agent = await (await fetch(`http://${node.a.agent.endpoints.metrics}/metrics`)).text();
  assert.is(metric(agent, 'vmwarden_agent_uninspected_parts'), 1, agent);
  assert.ok(metric(agent, 'vmwarden_agent_verdicts_total{is_valid="unknown"}') >= 1, agent);
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, XDG_CONFIG_HOME: cliHome, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test('`vmwarden sign get` prints is_valid unknown and what was not inspected', async () => {
  const { c } = node;
  const login = await cli([
    'login',
    '--url',
    c.httpBase,
    '--username',
    'admin',
    '--password',
    c.adminPassword,
  ]);
  assert.is(login.code, 0, login.stderr);
  const r = await cli(['sign', 'get', net.uuid]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^is_valid:\s+unknown$/m);
  assert.match(
    r.stdout,
    /^not inspected \(why is_valid is unknown\):\n {2}- disk vdc: network disk \(rbd pool\/image\) not inspected$/m,
  );
  const j = await cli(['sign', 'get', net.uuid, '--json']);
  assert.equal(JSON.parse(j.stdout).uninspected, [REASON]);
});

test('a block-device disk is inspected: "true", and a changed byte on the device is "false"', async () => {
  if (loopSkip || !blk) return console.log(`# block device test skipped: ${loopSkip}`);
  const { c, admin } = node;
  const created = await httpCall(c, 'POST', '/v1/sign', { token: admin, body: { server_id: blk.uuid } });
  assert.is(created.status, 200, created.text);
  assertSignShape(created.body.sign);
  assert.is(created.body.sign.is_valid, 'true');
  const m = await httpCall(c, 'GET', `/v1/sign/${blk.uuid}/manifest`, { token: admin });
  assert.is(m.body.manifest.unsupported, undefined);
  const disk = m.body.manifest.disks.find((d: any) => d.target === 'vdc');
  assert.is(disk.path, dev);
  assert.is(disk.size, 2 * MiB);
  assert.match(disk.digest, /^sha256-1m:/);

  flipByte(dev, MiB + 1);
  const bad = await httpCall(c, 'GET', `/v1/sign/${blk.uuid}`, { token: admin });
  assertSignShape(bad.body.sign);
  assert.is(bad.body.sign.is_valid, 'false');
  const why = await httpCall(c, 'GET', `/v1/sign/${blk.uuid}/manifest`, { token: admin });
  assert.equal(
    why.body.differences.map((d: any) => [d.component, d.target, d.path, d.chunks]),
    [['disk', 'vdc', dev, [1]]],
  );
  flipByte(dev, MiB + 1);
  assert.is((await httpCall(c, 'GET', `/v1/sign/${blk.uuid}`, { token: admin })).body.sign.is_valid, 'true');
});

test('an agent that still answers "true" for a manifest with gaps is recorded "unknown"', () => {
  const gaps = JSON.stringify({ unsupported: [REASON] });
  assert.equal(judged('true', gaps), { isValid: 'unknown', uninspected: [REASON] });
  assert.equal(judged('false', gaps), { isValid: 'false', uninspected: [] });
  assert.equal(judged('true', '{}'), { isValid: 'true', uninspected: [] });
  assert.equal(judged('true', '{}', ['x not inspected']), {
    isValid: 'unknown',
    uninspected: ['x not inspected'],
  });
  assert.equal(judged('garbage', 'not json'), { isValid: 'unknown', uninspected: [] });
});

test.run();
