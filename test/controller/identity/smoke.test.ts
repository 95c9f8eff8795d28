import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { assertContract, ZITI } from '../../helpers/contract.js';

let c: TestController;
test.before(async () => {
  c = await startTestController();
});
test.after(async () => c.destroy());

test('admin logs in and the session matches the contract', async () => {
  const r = await c.call('POST', '/authenticate?method=password', {
    body: { username: 'admin', password: c.adminPassword },
  });
  assert.is(r.status, 200);
  assertContract(ZITI, 'currentApiSessionDetailEnvelope', r.body);
  assert.is(r.headers['zt-session'], r.body.data.token);
});

test.run();
