/**
 * What grpcurl-style clients see: server reflection (v1 and v1alpha, spoken as the protocol, the
 * proto loaded with proto-loader) lists exactly the services each listener serves, and the standard
 * health service answers Check and Watch as grpc/grpc doc/health-checking.md says. Against a real
 * controller (TLS, verified with <dataDir>/pki/ca.crt) and a real agent (TCP with mTLS, unix socket).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { startTestAgent, unaryCall, grpcCode, type RawClient, type TestAgent } from '../../helpers/agent.js';
import { loadDefinition } from '../../../proto/load.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(180);

const reflectionDir = join(
  dirname(createRequire(import.meta.url).resolve('@grpc/reflection')),
  '..',
  'proto',
);
const reflectionPkg = grpc.loadPackageDefinition(
  protoLoader.loadSync(['grpc/reflection/v1/reflection.proto', 'grpc/reflection/v1alpha/reflection.proto'], {
    includeDirs: [reflectionDir],
    keepCase: true,
    defaults: false,
    oneofs: true,
  }),
) as any;
const Health = (grpc.loadPackageDefinition(loadDefinition(['grpc/health/v1/health.proto'])) as any).grpc
  .health.v1.Health as grpc.ServiceClientConstructor;

let c: TestController;
let a: TestAgent;

test.before(async () => {
  c = await startTestController();
  a = await startTestAgent(c);
});

test.after(async () => {
  await a?.stop();
  await c?.destroy();
});

interface Target {
  address: string;
  creds: () => grpc.ChannelCredentials;
  options?: grpc.ClientOptions;
}

// grpcurl -cacert <dataDir>/pki/ca.crt 127.0.0.1:9363 list
const controllerTarget = (): Target => ({
  address: c.controller.endpoints.grpc!,
  creds: () => grpc.credentials.createSsl(readFileSync(join(c.dataDir, 'pki', 'ca.crt'))),
  options: { 'grpc.ssl_target_name_override': 'localhost' },
});
// grpcurl -cacert ca.crt -cert controller-client.crt -key controller-client.key <agent>:9364 list
const agentTcpTarget = (): Target => ({
  address: a.agent.endpoints.grpc,
  creds: () =>
    grpc.credentials.createSsl(
      Buffer.from(c.caPem),
      readFileSync(join(c.dataDir, 'pki', 'controller-client.key')),
      readFileSync(join(c.dataDir, 'pki', 'controller-client.crt')),
      { checkServerIdentity: () => undefined },
    ),
});
// grpcurl -plaintext -unix /run/vmwarden/agent.sock list
const agentSocketTarget = (): Target => ({
  address: `unix://${a.agent.endpoints.socket}`,
  creds: () => grpc.credentials.createInsecure(),
});

/** One reflection stream: sends each request, collects one response per request. */
async function reflect(t: Target, version: 'v1' | 'v1alpha', requests: object[]): Promise<any[]> {
  const Ctor = reflectionPkg.grpc.reflection[version].ServerReflection as grpc.ServiceClientConstructor;
  const client = new Ctor(t.address, t.creds(), t.options) as RawClient;
  try {
    return await new Promise((resolve, reject) => {
      const out: any[] = [];
      const call = client.ServerReflectionInfo({ deadline: Date.now() + 10_000 });
      call.on('data', (m: any) => {
        out.push(m);
        if (out.length === requests.length) call.end();
      });
      call.on('error', reject);
      call.on('end', () => resolve(out));
      for (const r of requests) call.write({ host: '', ...r });
    });
  } finally {
    client.close();
  }
}

/** Minimal protobuf reading: the file name and service names of an encoded FileDescriptorProto. */
function describe(buf: Buffer): { name: string; services: string[] } {
  const fields = (b: Buffer) => {
    const out: Array<[number, Buffer]> = [];
    let i = 0;
    const varint = () => {
      let v = 0;
      let shift = 0;
      for (;;) {
        const byte = b[i++]!;
        v += (byte & 0x7f) * 2 ** shift;
        shift += 7;
        if (byte < 0x80) return v;
      }
    };
    while (i < b.length) {
      const key = varint();
      const wire = key & 7;
      if (wire === 0) varint();
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else if (wire === 2) {
        const len = varint();
        out.push([Math.floor(key / 8), b.subarray(i, i + len)]);
        i += len;
      } else throw new Error(`wire type ${wire}`);
    }
    return out;
  };
  const top = fields(buf);
  return {
    name: top.find(([f]) => f === 1)?.[1].toString() ?? '',
    services: top
      .filter(([f]) => f === 6)
      .map(
        ([, s]) =>
          fields(s)
            .find(([f]) => f === 1)?.[1]
            .toString() ?? '',
      ),
  };
}

const STANDARD = [
  'grpc.health.v1.Health',
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
];

async function checkListener(t: Target, own: string, other: string) {
  for (const version of ['v1', 'v1alpha'] as const) {
    const [list] = await reflect(t, version, [{ list_services: '*' }]);
    const names = list.list_services_response.service.map((s: { name: string }) => s.name).sort();
    assert.equal(names, [...STANDARD, own].sort(), `${version} list`);
    // Every listed service resolves to its file (what grpcurl describe does next).
    const replies = await reflect(
      t,
      version,
      names.map((n: string) => ({ file_containing_symbol: n })),
    );
    replies.forEach((r, i) => {
      assert.not.ok(r.error_response, `${names[i]}: ${JSON.stringify(r.error_response)}`);
      const files = r.file_descriptor_response.file_descriptor_proto.map((b: Buffer) => describe(b));
      assert.ok(
        files.some((f: { services: string[] }) => f.services.includes(names[i].split('.').pop())),
        names[i],
      );
    });
    // The other program's service is not listed. On the agent it does not resolve either; the
    // controller's proto imports agent.proto (shared message types), so that file is there.
    if (other === 'vmwarden.controller.v1.Controller') {
      const [missing] = await reflect(t, version, [{ file_containing_symbol: other }]);
      assert.is(missing.error_response?.error_code, grpc.status.NOT_FOUND, `${version} ${other}`);
    }
    // A method of the own service resolves (grpcurl describe Service.Method).
    const method = own === 'vmwarden.agent.v1.Agent' ? `${own}.GetNodeInfo` : `${own}.Enroll`;
    const [m] = await reflect(t, version, [{ file_containing_symbol: method }]);
    assert.not.ok(m.error_response, method);
  }
}

test('controller: reflection lists the Controller service, health and reflection, nothing else', async () => {
  await checkListener(controllerTarget(), 'vmwarden.controller.v1.Controller', 'vmwarden.agent.v1.Agent');
});

test('agent TCP (mTLS) and unix socket: reflection lists the Agent service, health and reflection', async () => {
  await checkListener(agentTcpTarget(), 'vmwarden.agent.v1.Agent', 'vmwarden.controller.v1.Controller');
  await checkListener(agentSocketTarget(), 'vmwarden.agent.v1.Agent', 'vmwarden.controller.v1.Controller');
});

const healthClient = (t: Target) => new Health(t.address, t.creds(), t.options) as RawClient;

test('health Check: the server and its service SERVING, an unknown service NOT_FOUND', async () => {
  const cases: Array<[Target, string, string]> = [
    [controllerTarget(), 'vmwarden.controller.v1.Controller', 'vmwarden.agent.v1.Agent'],
    [agentTcpTarget(), 'vmwarden.agent.v1.Agent', 'vmwarden.controller.v1.Controller'],
    [agentSocketTarget(), 'vmwarden.agent.v1.Agent', 'vmwarden.controller.v1.Controller'],
  ];
  for (const [t, own, other] of cases) {
    const h = healthClient(t);
    try {
      assert.equal(await unaryCall(h, 'check', { service: '' }), { status: 'SERVING' });
      assert.equal(await unaryCall(h, 'check', { service: own }), { status: 'SERVING' });
      assert.is(await grpcCode(unaryCall(h, 'check', { service: other })), grpc.status.NOT_FOUND);
      assert.is(await grpcCode(unaryCall(h, 'check', { service: 'no.such.Service' })), grpc.status.NOT_FOUND);
    } finally {
      h.close();
    }
  }
});

/** Opens a Watch and returns the statuses it receives and how it ended. */
function watch(h: RawClient, service: string) {
  const statuses: string[] = [];
  const call = h.watch({ service });
  const ended = new Promise<string>((resolve) => {
    call.on('error', (e: grpc.ServiceError) => resolve(grpc.status[e.code]));
    call.on('end', () => resolve('end'));
  });
  const next = (n: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`watch ${service}: ${statuses}`)), 10_000);
      const check = () => {
        if (statuses.length < n) return;
        clearTimeout(timer);
        call.off('data', check);
        resolve();
      };
      call.on('data', check);
      check();
    });
  call.on('data', (m: { status: string }) => statuses.push(m.status));
  return { call, statuses, ended, next };
}

test('health Watch: the current status at once; SERVICE_UNKNOWN for an unknown service; stays open', async () => {
  const h = healthClient(controllerTarget());
  try {
    const all = watch(h, '');
    const own = watch(h, 'vmwarden.controller.v1.Controller');
    const unknown = watch(h, 'vmwarden.agent.v1.Agent');
    await Promise.all([all.next(1), own.next(1), unknown.next(1)]);
    assert.equal(all.statuses, ['SERVING']);
    assert.equal(own.statuses, ['SERVING']);
    assert.equal(unknown.statuses, ['SERVICE_UNKNOWN']);
    // The streams stay open (a watcher is told of changes, not of the same status again).
    await new Promise((r) => setTimeout(r, 300));
    assert.is(all.statuses.length, 1);
    for (const w of [all, own, unknown]) w.call.cancel();
    assert.is(await all.ended, 'CANCELLED');
  } finally {
    h.close();
  }
});

test('health Watch on the agent socket: NOT_SERVING when the agent stops, then the stream ends', async () => {
  const h = healthClient(agentSocketTarget());
  try {
    const w = watch(h, '');
    const own = watch(h, 'vmwarden.agent.v1.Agent');
    await Promise.all([w.next(1), own.next(1)]);
    const started = Date.now();
    await a.stopAgent();
    await Promise.all([w.next(2), own.next(2)]);
    assert.equal(w.statuses, ['SERVING', 'NOT_SERVING']);
    assert.equal(own.statuses, ['SERVING', 'NOT_SERVING']);
    assert.is(await w.ended, 'end');
    // The open watch did not hold the shutdown up until its 5 s force deadline.
    assert.ok(Date.now() - started < 4500, `stop took ${Date.now() - started} ms`);
  } finally {
    h.close();
  }
});

test.run();
