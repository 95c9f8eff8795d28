/** Certificate issuing writes its audit row in the certificate's own transaction: both or neither. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type Reply, type TestController } from '../../helpers/controller.js';
import { refuseAuditWrites } from './audit-store.js';
import {
  createInstance,
  issue,
  makeUserKey,
  requestAccess,
  tempDir,
  type UserKeyFiles,
} from '../access/util.js';

let c: TestController;
let admin = '';
let key: UserKeyFiles;
let cleanup = async () => {};

test.before(async () => {
  let dir: string;
  ({ dir, cleanup } = await tempDir());
  key = await makeUserKey(dir, 'id_inline', 'ed25519');
  c = await startTestController();
  admin = await c.adminToken();
});
test.after(async () => {
  await c?.destroy();
  await cleanup();
});

const total = async () =>
  (await c.call('GET', '/v1/access/certificates?limit=1', { token: admin })).body.total as number;
const auditRows = async (object: string) =>
  (
    await c.call('GET', '/v1/audit?action=certificate.issue&limit=1000', { token: admin })
  ).body.entries.filter((e: { object: string }) => e.object === object);

test('an issued certificate has exactly one success audit row naming it', async () => {
  const vm = await createInstance(c);
  const issued = await issue(c, admin, { sandbox_id: vm.serverId, public_key: key.pub });
  const rows = await auditRows(issued.id);
  assert.is(rows.length, 1);
  assert.is(rows[0].outcome, 'success');
  assert.is(rows[0].action, 'certificate.issue');
});

test('audit write refused → 503 and no certificate is committed (fail closed)', async () => {
  const vm = await createInstance(c);
  const before = await total();
  const allowAudit = await refuseAuditWrites(c.controller.services.db);
  let r: Reply;
  try {
    r = await requestAccess(c, admin, { sandbox_id: vm.serverId, public_key: key.pub });
  } finally {
    await allowAudit();
  }
  assert.is(r.status, 503, r.text);
  assert.is(r.body.code, 503);
  assert.is(await total(), before, 'the certificate was rolled back with its audit row');
  // The next request works again.
  const ok = await requestAccess(c, admin, { sandbox_id: vm.serverId, public_key: key.pub });
  assert.is(ok.status, 200, ok.text);
  assert.is(await total(), before + 1);
});

test.run();
