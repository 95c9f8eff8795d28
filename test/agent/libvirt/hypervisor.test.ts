import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import {
  connectHypervisor,
  DomainNotFoundError,
  parseDomifaddr,
  pickDefaultUri,
  type Hypervisor,
} from '../../../agent/src/libvirt/hypervisor.js';

let hv: Hypervisor;

test.before(async () => {
  hv = await connectHypervisor('test:///default');
});
test.after(async () => {
  await hv.close();
});

test('lists the test driver domain, running', async () => {
  const doms = await hv.listDomains();
  const t = doms.find((d) => d.name === 'test');
  assert.ok(t);
  assert.is(t!.state, 'running');
  assert.match(t!.uuid, /^[0-9a-f-]{36}$/);
  assert.equal(await hv.getDomain(t!.uuid), t);
});

test('unknown and malformed uuids are undefined, operations on them throw DomainNotFoundError', async () => {
  assert.is(await hv.getDomain(randomUUID()), undefined);
  assert.is(await hv.getDomain('not-a-uuid'), undefined);
  try {
    await hv.inactiveXml(randomUUID());
    assert.unreachable();
  } catch (e) {
    assert.instance(e, DomainNotFoundError);
  }
});

test('define, start, destroy; inactive XML has no id', async () => {
  const uuid = randomUUID();
  const info = await hv.defineXml(`<domain type='test'><name>hv-a</name><uuid>${uuid}</uuid>
    <memory unit='KiB'>65536</memory><os><type>hvm</type></os></domain>`);
  assert.equal(info, { uuid, name: 'hv-a', state: 'shut off' });
  await hv.start(uuid);
  assert.is((await hv.getDomain(uuid))!.state, 'running');
  const xml = await hv.inactiveXml(uuid);
  assert.match(xml, /<name>hv-a<\/name>/);
  assert.not.match(xml, /<domain[^>]* id=/);
  assert.equal(await hv.addresses(uuid), []);
  await hv.destroy(uuid);
  assert.is((await hv.getDomain(uuid))!.state, 'shut off');
});

test('parseDomifaddr keeps addresses without prefix', () => {
  const out = ` vnet0      52:54:00:aa:bb:cc    ipv4         192.168.122.10/24
 -          -                    ipv6         fe80::1/64
`;
  assert.equal(parseDomifaddr(out), ['192.168.122.10', 'fe80::1']);
});

test('pickDefaultUri answers quickly with one of the two URIs', async () => {
  const t0 = Date.now();
  const uri = await pickDefaultUri();
  assert.ok(uri === 'qemu:///system' || uri === 'test:///default');
  // Each probe gives up after 2 s; a probe that hangs would not.
  assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
});

test.run();
