import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canonicalDomainXml, configDigest } from '../../../agent/src/signature/canonical-xml.js';

const base = `<?xml version="1.0"?>
<domain type='kvm' id='7'>
  <name>web-1</name>
  <uuid>0b7f6a51-3c1e-4c52-9d2b-0a1e2f3c4d5e</uuid>
  <memory unit='KiB'>1048576</memory>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <kernel>/var/lib/vm/vmlinuz</kernel>
    <cmdline>console=ttyS0 root=/dev/vda</cmdline>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/vm/web-1.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='default'/>
      <actual type='network'/>
      <target dev='vnet3'/>
      <alias name='net0'/>
    </interface>
    <graphics type='vnc' port='5901' autoport='yes' websocket='5701' listen='127.0.0.1'/>
  </devices>
  <seclabel type='dynamic' model='selinux' relabel='yes'>
    <label>system_u:system_r:svirt_t:s0:c1,c2</label>
    <imagelabel>system_u:object_r:svirt_image_t:s0:c1,c2</imagelabel>
  </seclabel>
  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+107:+107</label>
    <imagelabel>+107:+107</imagelabel>
  </seclabel>
</domain>`;

test('volatile parts are removed', () => {
  const c = canonicalDomainXml(base);
  assert.not.match(c, /id="7"/);
  assert.not.match(c, /alias|seclabel|svirt|vnet3|actual|5901|5701/);
  assert.match(c, /<graphics autoport="yes" listen="127.0.0.1" type="vnc"\/>/);
  assert.match(
    c,
    /<interface type="network"><mac address="52:54:00:12:34:56"\/><source network="default"\/><\/interface>/,
  );
  assert.ok(c.startsWith('<domain type="kvm"><name>web-1</name>'));
});

test('volatile values changing does not change the digest', () => {
  const other = base
    .replace("id='7'", "id='12'")
    .replace('vnet3', 'vnet9')
    .replace("port='5901'", "port='5905'")
    .replace('virtio-disk0', 'ua-disk')
    .replace(/c1,c2/g, 'c88,c99');
  assert.is(configDigest(other), configDigest(base));
  assert.match(configDigest(base), /^sha256:[0-9a-f]{64}$/);
});

test('cosmetic reformatting does not change the digest', () => {
  const cosmetic = base
    .replace('<?xml version="1.0"?>\n', '')
    .replace(/\n\s*/g, '\n\t\t') // re-indent
    .replace("<type arch='x86_64' machine='pc-q35-7.2'>", '<type machine="pc-q35-7.2"   arch="x86_64" >')
    .replace("<driver name='qemu' type='qcow2'/>", '<driver type="qcow2" name="qemu"></driver>')
    .replace('<name>web-1</name>', '<!-- the web server --><name>  web-1 </name>')
    .replace("<source network='default'/>", '<source network="def&#97;ult" />');
  assert.is.not(cosmetic, base);
  assert.is(canonicalDomainXml(cosmetic), canonicalDomainXml(base));
  assert.is(configDigest(cosmetic), configDigest(base));
});

test('semantic changes change the digest', () => {
  const d = configDigest(base);
  const edits = [
    base.replace('1048576', '2097152'),
    base.replace('/var/lib/vm/web-1.qcow2', '/var/lib/vm/web-2.qcow2'),
    base.replace('root=/dev/vda', 'root=/dev/vda init=/bin/sh'),
    base.replace(
      '</devices>',
      "<disk type='file' device='cdrom'><source file='/tmp/x.iso'/><target dev='sda'/><readonly/></disk></devices>",
    ),
    base.replace("<seclabel type='dynamic' model='dac'", "<seclabel type='static' model='dac'"),
    base.replace("autoport='yes'", "autoport='no'"),
  ];
  for (const e of edits) assert.is.not(configDigest(e), d, e);
});

test('entities are decoded and re-escaped one way', () => {
  const a = `<domain type='kvm'><name>a&amp;b</name><description>x &lt; y "q"</description></domain>`;
  const b = `<domain type="kvm"><name>a&#38;b</name><description><![CDATA[x < y "q"]]></description></domain>`;
  assert.is(
    canonicalDomainXml(a),
    '<domain type="kvm"><name>a&amp;b</name><description>x &lt; y "q"</description></domain>',
  );
  assert.is(canonicalDomainXml(b), canonicalDomainXml(a));
});

test('malformed XML and non-domain roots are refused', () => {
  assert.throws(() => canonicalDomainXml('<domain><name>x</domain>'), /invalid XML/);
  assert.throws(() => canonicalDomainXml('<network><name>x</name></network>'), /not a domain/);
});

test.run();
