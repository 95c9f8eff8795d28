/**
 * Every metric the controller and the agent exposed before their metrics moved to prom-client
 * (names, types, help texts and label names, taken from a scrape of the hand-written exposition)
 * is still exposed, unchanged; the standard process_* and nodejs_* metrics come on top.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { defineTestDomain, startTestAgent, type TestAgent, type TestDomain } from '../../helpers/agent.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

interface Family {
  type: string;
  help: string;
  /** Label names of the family's samples (histogram buckets without `le`). */
  labels: string[];
}

/** Name, type, help and label names of every family in a text exposition. */
export function families(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  const family = (name: string) => {
    let f = out.get(name);
    if (!f) out.set(name, (f = { type: '', help: '', labels: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const f = family(meta[2]!);
      if (meta[1] === 'HELP') f.help = meta[3]!;
      else f.type = meta[3]!;
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!sample) continue;
    const name = sample[1]!;
    const base = out.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    const f = family(base);
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g))
      if (m[1] !== 'le' && !f.labels.includes(m[1]!)) f.labels.push(m[1]!);
  }
  for (const f of out.values()) f.labels.sort();
  return out;
}

/** The controller's families before prom-client (scrape after a little traffic). */
const CONTROLLER: Record<string, Family> = {
  vmwarden_http_requests_total: {
    type: 'counter',
    help: 'REST requests answered, by route template, method and status code.',
    labels: ['method', 'route', 'status'],
  },
  vmwarden_http_request_duration_seconds: {
    type: 'histogram',
    help: 'REST request latency in seconds, by route template, method and status code.',
    labels: ['method', 'route', 'status'],
  },
  vmwarden_certificates_issued_total: {
    type: 'counter',
    help: 'SSH user certificates issued through the access API.',
    labels: [],
  },
  vmwarden_certificates_revoked_total: {
    type: 'counter',
    help: 'SSH user certificates revoked through the access API.',
    labels: [],
  },
  vmwarden_audit_writes_total: {
    type: 'counter',
    help: 'Audit log writes, by result (ok, error). An error refuses the audited action.',
    labels: ['result'],
  },
  vmwarden_grpc_calls_total: {
    type: 'counter',
    help: 'gRPC calls served by the controller, by method and status code.',
    labels: ['code', 'method'],
  },
  vmwarden_grpc_calls_started_total: {
    type: 'counter',
    help: 'gRPC calls started on the controller, by method (in flight = started - finished).',
    labels: ['method'],
  },
  vmwarden_ssh_sessions_active: {
    type: 'gauge',
    help: 'SSH sessions reported as started and not yet ended.',
    labels: [],
  },
  vmwarden_api_sessions: {
    type: 'gauge',
    help: 'API sessions in the store (idle ones are swept every minute).',
    labels: [],
  },
  vmwarden_certificates: {
    type: 'gauge',
    help: 'SSH certificates in the store, by status.',
    labels: ['status'],
  },
  vmwarden_signatures: {
    type: 'gauge',
    help: "Signatures in the catalogue, by verdict (is_valid: 'true', 'false', 'unknown').",
    labels: ['is_valid'],
  },
};

/** The agent's families before prom-client (scrape after signing and verifying one instance). */
const AGENT: Record<string, Family> = {
  vmwarden_agent_verdicts_total: {
    type: 'counter',
    help: 'Signature verdicts, by is_valid.',
    labels: ['is_valid'],
  },
  vmwarden_agent_hook_decisions_total: {
    type: 'counter',
    help: 'Start checks asked by the libvirt hook, by decision (allow|refuse).',
    labels: ['decision'],
  },
  vmwarden_agent_hashed_bytes_total: {
    type: 'counter',
    help: 'Bytes read by the hashing engine (rate over vmwarden_agent_hash_seconds_total = hashing bytes/s).',
    labels: [],
  },
  vmwarden_agent_hash_seconds_total: {
    type: 'counter',
    help: 'Time spent hashing files, seconds.',
    labels: [],
  },
  vmwarden_agent_recheck_reused_total: {
    type: 'counter',
    help: 'Files re-checked from their unchanged identity, without reading.',
    labels: [],
  },
  vmwarden_agent_grpc_calls_total: {
    type: 'counter',
    help: 'gRPC calls answered by the agent, by method and code.',
    labels: ['code', 'method'],
  },
  vmwarden_agent_grpc_calls_started_total: {
    type: 'counter',
    help: 'gRPC calls started, by method.',
    labels: ['method'],
  },
  vmwarden_agent_signed_instances: { type: 'gauge', help: 'Instances with a baseline.', labels: [] },
  vmwarden_agent_uninspected_parts: {
    type: 'gauge',
    help: 'Parts of signed instances no signature covers (network disks, ...): their verdicts are unknown.',
    labels: [],
  },
  vmwarden_agent_validation_active: { type: 'gauge', help: '1 while node validation is on.', labels: [] },
};

let c: TestController;
let a: TestAgent;
let vm: TestDomain;

test.before(async () => {
  c = await startTestController();
  a = await startTestAgent(c);
  vm = await defineTestDomain(a.hypervisor, 'vm-metric-inventory');
  await a.agent.report();
  const admin = await c.adminToken();
  const signed = await c.call('POST', '/v1/sign', { token: admin, body: { server_id: vm.uuid } });
  assert.is(signed.status, 200, signed.text);
  assert.is((await c.call('GET', `/v1/sign/${vm.uuid}`, { token: admin })).status, 200);
});
test.after(async () => {
  await a?.stop();
  vm?.remove();
  await c?.destroy();
});

/** Each expected family is there with its type and help; its samples carry no label it did not have. */
function assertKept(text: string, expected: Record<string, Family>) {
  const got = families(text);
  for (const [name, want] of Object.entries(expected)) {
    const f = got.get(name);
    assert.ok(f, `${name} is missing from:\n${text}`);
    assert.is(f!.type, want.type, `${name} type`);
    assert.is(f!.help, want.help, `${name} help`);
    for (const l of f!.labels) assert.ok(want.labels.includes(l), `${name} has a new label ${l}`);
  }
}

test('the controller keeps every metric it had', async () => {
  assertKept((await c.call('GET', '/metrics')).text, CONTROLLER);
});

test('the agent keeps every metric it had', async () => {
  const r = await fetch(`http://${a.agent.endpoints.metrics}/metrics`);
  assert.is(r.status, 200);
  assertKept(await r.text(), AGENT);
});

/** A few of prom-client's standard metrics, which the hand-written exposition did not have. */
const STANDARD = [
  'process_cpu_seconds_total',
  'process_start_time_seconds',
  'process_resident_memory_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_eventloop_lag_seconds',
  'nodejs_version_info',
];

test('both expose the standard process_* and nodejs_* metrics, each family once', async () => {
  const agent = await (await fetch(`http://${a.agent.endpoints.metrics}/metrics`)).text();
  for (const text of [(await c.call('GET', '/metrics')).text, agent]) {
    const got = families(text);
    for (const name of STANDARD) assert.ok(got.has(name), `${name} is missing from:\n${text}`);
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    assert.is(new Set(types).size, types.length, 'a family is exposed twice');
  }
});

test.run();
