/** The agent's /metrics: verdicts, hashing, gRPC calls and hook decisions move with real work. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../helpers/controller.js';
import {
  defineTestDomain,
  postCheckStart,
  startTestAgent,
  type TestAgent,
  type TestDomain,
} from '../helpers/agent.js';

let c: TestController;
let a: TestAgent;
let vm: TestDomain;

test.before(async () => {
  c = await startTestController();
  a = await startTestAgent(c);
  vm = await defineTestDomain(a.hypervisor, 'vm-metrics');
  await a.agent.report();
});
test.after(async () => {
  await a?.stop();
  vm?.remove();
  await c?.destroy();
});

async function scrape(): Promise<string> {
  const r = await fetch(`http://${a.agent.endpoints.metrics}/metrics`);
  assert.is(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /text\/plain; version=0.0.4/);
  return r.text();
}

/** The value of one series, or 0 when absent. */
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

function checkStart(xml: string): Promise<string> {
  return postCheckStart(a, vm.name, xml);
}

test('metrics follow signing, verification, gRPC calls and hook decisions', async () => {
  const before = await scrape();
  assert.is(value(before, 'vmwarden_agent_signed_instances'), 0);
  assert.is(value(before, 'vmwarden_agent_validation_active'), 0);

  const admin = await c.adminToken();
  assert.is((await c.call('POST', '/v1/sign', { token: admin, body: { server_id: vm.uuid } })).status, 200);
  const got = await c.call('GET', `/v1/sign/${vm.uuid}`, { token: admin });
  assert.is(got.body.sign.is_valid, 'true');
  assert.is((await checkStart(vm.xml)).trim(), 'allow');

  const after = await scrape();
  assert.is(value(after, 'vmwarden_agent_signed_instances'), 1);
  // every part of this instance was inspected (test/controller/sign/uninspected: one that is not)
  assert.match(after, /^# TYPE vmwarden_agent_uninspected_parts gauge$/m);
  assert.match(after, /^vmwarden_agent_uninspected_parts 0$/m);
  assert.ok(value(after, 'vmwarden_agent_verdicts_total{is_valid="true"}') >= 1, after);
  assert.ok(value(after, 'vmwarden_agent_hashed_bytes_total') > 0, 'signing read the files');
  assert.ok(value(after, 'vmwarden_agent_hash_seconds_total') > 0);
  assert.ok(
    value(after, 'vmwarden_agent_recheck_reused_total') >= 1,
    'the verify re-checked unchanged files',
  );
  assert.is(value(after, 'vmwarden_agent_grpc_calls_total{method="signInstance",code="OK"}'), 1);
  assert.ok(value(after, 'vmwarden_agent_grpc_calls_total{method="verifyInstance",code="OK"}') >= 1);
  assert.is(value(after, 'vmwarden_agent_hook_decisions_total{decision="allow"}'), 1);
});

test('only GET /metrics is served', async () => {
  const r = await fetch(`http://${a.agent.endpoints.metrics}/other`);
  assert.is(r.status, 404);
});

test.run();
