import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { backingChain, domainArtifacts } from '../../../agent/src/signature/artifacts.js';
import { domainXml, makeVmFiles, type VmFiles } from './fixtures.js';

let files: VmFiles;
test.before(() => {
  files = makeVmFiles('vmwarden-art-');
});
test.after(() => files.remove());

const extra = `
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/image'><host name='ceph1' port='6789'/></source>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'><target dev='sdb' bus='sata'/><readonly/></disk>
    <disk type='file' device='disk'><source file='/srv/shared.img'/><target dev='vdd'/><shareable/></disk>
    <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/vg0/data'/><target dev='vde'/></disk>
    <disk type='network' device='disk'>
      <source protocol='iscsi' name='iqn.2013-06.com.example:iscsi-pool/1'><host name='san1' port='3260'/></source>
      <target dev='vdf' bus='virtio'/>
    </disk>
    <disk type='volume' device='disk'><source pool='default' volume='v1'/><target dev='vdg'/></disk>
    <disk type='block' device='cdrom'><source dev='/dev/sr0'/><target dev='sdc' bus='sata'/><readonly/></disk>`;

test('boot artifacts, writable disks and unsupported parts of a definition', async () => {
  const xml = domainXml(files, { name: 'a', extraDevices: extra }).replace(
    '</os>',
    "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader><nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/lib/nvram/a.fd</nvram></os>",
  );
  const a = await domainArtifacts(xml);
  assert.equal(a.boot, [
    { role: 'kernel', path: files.kernel },
    { role: 'initrd', path: files.initrd },
    { role: 'loader', path: '/usr/share/OVMF/OVMF_CODE.fd' },
    { role: 'nvram-template', path: '/usr/share/OVMF/OVMF_VARS.fd' },
    { role: 'readonly-disk', path: files.seed },
    { role: 'backing-file', path: files.base },
  ]);
  // a block device (LVM volume) is a writable disk like a file; network and pool volumes are not inspected
  assert.equal(a.disks, [
    { target: 'vda', path: files.overlay, format: 'qcow2' },
    { target: 'vdb', path: files.data, format: 'raw' },
    { target: 'vde', path: '/dev/vg0/data', format: 'raw' },
  ]);
  assert.is(a.unsupported.length, 6, a.unsupported.join('\n'));
  assert.is(a.unsupported[0], 'disk vdc: network disk (rbd pool/image) not inspected');
  assert.is(
    a.unsupported[1],
    'disk vdd: writable shareable disk /srv/shared.img not inspected (never sealed)',
  );
  assert.is(
    a.unsupported[2],
    'disk vdf: network disk (iscsi iqn.2013-06.com.example:iscsi-pool/1) not inspected',
  );
  assert.is(a.unsupported[3], 'disk vdg: storage volume default/v1 not inspected');
  assert.is(a.unsupported[4], 'disk sdc: host cdrom drive /dev/sr0 not inspected');
  assert.match(a.unsupported[5]!, /disk vdd: backing chain of \/srv\/shared.img not inspected/);
});

test('backing chain follows several levels, relative names resolved', async () => {
  const top = join(files.dir, 'top.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'overlay.qcow2', '-F', 'qcow2', top], {
    cwd: files.dir,
  });
  assert.equal(await backingChain(top, 'qcow2'), { files: [files.overlay, files.base] });
  assert.equal(await backingChain(top, undefined), { files: [files.overlay, files.base] });
  // raw images are never probed: a guest could write an image header into them
  assert.equal(await backingChain(files.data, 'raw'), { files: [] });
});

test('missing qemu-img and missing images are tolerated and reported', async () => {
  const r = await backingChain(files.overlay, 'qcow2', '/nonexistent/qemu-img');
  assert.equal(r, { files: [], error: '/nonexistent/qemu-img not available' });
  const a = await domainArtifacts(domainXml(files, { name: 'b' }), { qemuImg: '/nonexistent/qemu-img' });
  assert.ok(!a.boot.some((b) => b.role === 'backing-file'));
  assert.ok(
    a.unsupported.some((u) =>
      /disk vda: backing chain .* not inspected: \/nonexistent\/qemu-img not available/.test(u),
    ),
  );
  const m = await backingChain(join(files.dir, 'nope.qcow2'), 'qcow2');
  assert.equal(m.files, []);
  assert.match(m.error!, /No such file/);
});

test.run();
