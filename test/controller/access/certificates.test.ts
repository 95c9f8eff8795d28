/**
 * What POST /v1/access/request issues, read back by the real `ssh-keygen -L`: serial, key id,
 * principal, validity, extensions and critical options — for each CA key type, with the default
 * policy and with force-command + source-address.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { ACCESS, assertContract } from '../../helpers/contract.js';
import {
  createInstance,
  grant,
  issue,
  rawSerials,
  keygenDate,
  keygenList,
  makeUserKey,
  schema,
  tempDir,
  type UserKeyFiles,
} from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(240);

const CA_TYPES = [
  ['ed25519', 'ED25519', 'ssh-ed25519', 'ssh-ed25519'],
  ['ecdsa-p256', 'ECDSA', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp256'],
  ['rsa', 'RSA', 'ssh-rsa', 'rsa-sha2-512'],
] as const;

const USER_KEYS = [
  ['ed25519', 'ed25519', undefined, 'ssh-ed25519-cert-v01@openssh.com'],
  ['ecdsa', 'ecdsa', 256, 'ecdsa-sha2-nistp256-cert-v01@openssh.com'],
  ['rsa', 'rsa', 2048, 'ssh-rsa-cert-v01@openssh.com'],
] as const;

const FORCE = 'tmux new-session -A -s vmwarden';

let dir = '';
let cleanup = async () => {};
const users: Record<string, UserKeyFiles> = {};
const controllers: TestController[] = [];

test.before(async () => {
  ({ dir, cleanup } = await tempDir());
  for (const [name, type, bits] of USER_KEYS) users[name] = await makeUserKey(dir, `id_${name}`, type, bits);
});

test.after(async () => {
  for (const c of controllers) await c.destroy();
  await cleanup();
});

/** Lines of an `ssh-keygen -L` section (Principals, Critical Options, Extensions). */
function section(out: string, title: string): string[] | '(none)' {
  const m = new RegExp(`${title}: (\\(none\\))?\\n((?:\\s{16}.*\\n)*)`).exec(out);
  assert.ok(m, `no ${title} in:\n${out}`);
  if (m![1]) return '(none)';
  return m![2]!
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

const field = (out: string, name: string) => {
  const m = new RegExp(`^\\s+${name}: (.*)$`, 'm').exec(out);
  assert.ok(m, `no ${name} in:\n${out}`);
  return m![1]!;
};

for (const [caType, caLabel, caKeyType, sigAlg] of CA_TYPES) {
  for (const withPolicy of [false, true]) {
    const label = withPolicy ? 'force-command + source-address caller' : 'default policy';
    test(`${caType} CA, ${label}: every issued certificate reads back exactly`, async () => {
      const c = await startTestController({
        sshCaKeyType: caType,
        ...(withPolicy ? { certForceCommand: FORCE, certSourceAddress: 'caller' } : {}),
      });
      controllers.push(c);
      const admin = await c.adminToken();

      const caPub = await c.call('GET', '/v1/access/ca-pubkey');
      assert.is(caPub.status, 200, caPub.text);
      assertContract(ACCESS, schema('caPublicKeyResponse'), caPub.body);
      assert.ok(caPub.body.public_key.startsWith(`${caKeyType} AAAA`), caPub.body.public_key);
      const caList = await c.call('GET', '/v1/access/ca-pubkeys');
      assert.is(caList.status, 200, caList.text);
      assert.is(caList.body.public_keys.length, 1);
      const caFingerprint = caList.body.public_keys[0].fingerprint as string;
      assert.match(caFingerprint, /^SHA256:/);

      const vm = await createInstance(c, { ip_address: '198.51.100.7', ssh_port: 2222 });
      const user = await c.createUser(`alice-${caType}-${withPolicy}`);
      await grant(c, vm.serverId, user.id);

      for (const [keyName, , , certType] of USER_KEYS) {
        for (const ttl of [undefined, 1, 10]) {
          const body: Record<string, unknown> = { sandbox_id: vm.serverId, public_key: users[keyName]!.pub };
          if (ttl !== undefined) body.ttl_minutes = ttl;
          const got = await issue(c, user.token, body);
          const minutes = ttl ?? 5;

          // The response
          const resp = got.reply.body;
          assert.is(resp.ssh_port, 2222);
          assert.is(resp.vm_ip_address, '198.51.100.7');
          assert.is(resp.username, 'debian');
          assert.ok(
            resp.ttl_seconds > minutes * 60 - 5 && resp.ttl_seconds <= minutes * 60,
            resp.ttl_seconds,
          );
          assert.ok(resp.certificate.startsWith(`${certType} AAAA`), resp.certificate);

          // The record
          const rec = got.record.body;
          assertContract(ACCESS, schema('certificateResponse'), rec);
          const keyId = `user:${user.id}-vm:${vm.name}-sbx:${vm.serverId}-cert:${got.id}`;
          assert.is(rec.id, got.id);
          assert.is(rec.identity, keyId);
          assert.equal(rec.principals, [vm.principal]);
          assert.is(rec.sandbox_id, vm.serverId);
          assert.is(rec.user_id, user.id);
          assert.is(rec.vm_id, vm.name);
          assert.is(rec.status, 'ACTIVE');
          assert.is(rec.is_expired, false);
          assert.is(rec.valid_before, resp.valid_until);
          const issued = Date.parse(rec.issued_at);
          assert.is(Date.parse(rec.valid_after), issued - 60_000);
          assert.is(Date.parse(rec.valid_before), issued + minutes * 60_000);
          // The serial is an exact uint64 in the JSON text, non-zero.
          assert.ok(BigInt(got.serial) > 0n && BigInt(got.serial) < 1n << 64n, got.serial);
          assert.is(rec.serial_number, Number(got.serial));

          // What OpenSSH reads
          const out = await keygenList(dir, got.certificate);
          assert.ok(out.includes(`Type: ${certType} user certificate`), out);
          assert.is(field(out, 'Signing CA'), `${caLabel} ${caFingerprint} (using ${sigAlg})`);
          assert.is(field(out, 'Serial'), got.serial);
          assert.is(field(out, 'Key ID'), `"${keyId}"`);
          assert.is(
            field(out, 'Valid'),
            `from ${keygenDate(new Date(issued - 60_000))} to ${keygenDate(new Date(issued + minutes * 60_000))}`,
          );
          assert.equal(section(out, 'Principals'), [vm.principal]);
          assert.equal(section(out, 'Extensions'), ['permit-pty']);
          if (withPolicy) {
            assert.equal(section(out, 'Critical Options'), [
              `force-command ${FORCE}`,
              'source-address 127.0.0.1',
            ]);
          } else {
            assert.is(section(out, 'Critical Options'), '(none)');
          }
        }
      }

      // Admin asking on behalf of the user: same content, the user's identity in the key id.
      const onBehalf = await issue(c, admin, {
        sandbox_id: vm.serverId,
        user_id: user.id,
        public_key: users.ed25519!.pub,
      });
      assert.is(onBehalf.record.body.user_id, user.id);
      const out = await keygenList(dir, onBehalf.certificate);
      assert.is(
        field(out, 'Key ID'),
        `"user:${user.id}-vm:${vm.name}-sbx:${vm.serverId}-cert:${onBehalf.id}"`,
      );
      assert.is(field(out, 'Serial'), onBehalf.serial);

      await c.destroy();
    });
  }
}

test('serials are unique and exact above 2^53 in every listing', async () => {
  const c = await startTestController();
  controllers.push(c);
  const admin = await c.adminToken();
  const vm = await createInstance(c);
  const serials = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const got = await issue(c, admin, { sandbox_id: vm.serverId, public_key: users.ed25519!.pub });
    const out = await keygenList(dir, got.certificate);
    assert.is(field(out, 'Serial'), got.serial);
    serials.add(got.serial);
  }
  assert.is(serials.size, 20);
  assert.ok(
    [...serials].some((s) => BigInt(s) > 2n ** 53n),
    'random 64-bit serials: at least one above 2^53',
  );
  const list = await c.call('GET', '/v1/access/certificates?limit=100', { token: admin });
  assert.is(list.status, 200);
  assert.equal(new Set(rawSerials(list.text)), serials);
});

test.run();
