/** The agent's settings: file < environment < flags, and malformed values refused. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentConfigError, loadAgentConfig } from '../../agent/src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'vmwarden-agent-config-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('flags beat the environment, which beats the config file', () => {
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, 'nodeName: from-file\nreportIntervalSeconds: 7\ncontroller: file:1\n');
  const env = { VMWARDEN_AGENT_NODE_NAME: 'from-env', VMWARDEN_AGENT_CONTROLLER: 'env:2' };
  const { command, config, extra } = loadAgentConfig(
    ['run', '--config', file, '--controller', 'flag:3', '--token', 't'],
    ['token'],
    env,
  );
  assert.is(command, 'run');
  assert.is(config.reportIntervalSeconds, 7);
  assert.is(config.nodeName, 'from-env');
  assert.equal(config.controller, ['flag:3']);
  assert.is(extra.token, 't');
});

test('malformed numbers, unknown settings and bad flags are refused', () => {
  assert.throws(
    () => loadAgentConfig(['run'], [], { VMWARDEN_AGENT_REPORT_INTERVAL_SECONDS: 'soon' }),
    (e: unknown) =>
      e instanceof AgentConfigError && /reportIntervalSeconds must be a non-negative number/.test(String(e)),
  );
  const file = join(dir, 'typo.json');
  writeFileSync(file, JSON.stringify({ nodeNmae: 'x' }));
  assert.throws(
    () => loadAgentConfig(['run', '--config', file], [], {}),
    (e: unknown) =>
      e instanceof AgentConfigError && /unknown setting 'nodeNmae'; known: .*nodeName/.test(String(e)),
  );
  assert.throws(
    () => loadAgentConfig(['run', '--no-such-flag', 'x'], [], {}),
    (e: unknown) => e instanceof AgentConfigError,
  );
  assert.throws(
    () => loadAgentConfig(['run', '--tamper-policy', 'ignore'], [], {}),
    (e: unknown) =>
      e instanceof AgentConfigError && /tamperPolicy must be one of alert, shutdown/.test(String(e)),
  );
  // uninspectedPolicy: allow by default, refuse from a flag or the environment, nothing else
  assert.is(loadAgentConfig(['run'], [], {}).config.uninspectedPolicy, 'allow');
  assert.is(
    loadAgentConfig(['run', '--uninspected-policy', 'refuse'], [], {}).config.uninspectedPolicy,
    'refuse',
  );
  assert.is(
    loadAgentConfig(['run'], [], { VMWARDEN_AGENT_UNINSPECTED_POLICY: 'refuse' }).config.uninspectedPolicy,
    'refuse',
  );
  assert.throws(
    () => loadAgentConfig(['run', '--uninspected-policy', 'maybe'], [], {}),
    (e: unknown) =>
      e instanceof AgentConfigError && /uninspectedPolicy must be one of allow, refuse/.test(String(e)),
  );
});

test('sshProvisioning entries from the file or the environment (JSON), checked', () => {
  const file = join(dir, 'prov.yaml');
  writeFileSync(
    file,
    'sshProvisioning:\n  web-1:\n    keyFile: /etc/vmwarden-agent/keys/web-1\n' +
      '  3f1c1d2e-0000-4000-8000-000000000001:\n    keyFile: /k\n    port: 2222\n    address: 10.0.0.5\n' +
      `    hostKey: SHA256:${'A'.repeat(43)}\n`,
  );
  const { config } = loadAgentConfig(['run', '--config', file], [], {});
  assert.equal(config.sshProvisioning, {
    'web-1': { keyFile: '/etc/vmwarden-agent/keys/web-1', port: 22 },
    '3f1c1d2e-0000-4000-8000-000000000001': {
      keyFile: '/k',
      port: 2222,
      address: '10.0.0.5',
      hostKey: `SHA256:${'A'.repeat(43)}`,
    },
  });
  const fromEnv = loadAgentConfig(['run'], [], {
    VMWARDEN_AGENT_SSH_PROVISIONING: JSON.stringify({ db: { keyFile: '/k2' } }),
  });
  assert.equal(fromEnv.config.sshProvisioning, { db: { keyFile: '/k2', port: 22 } });
  assert.equal(loadAgentConfig(['run'], [], {}).config.sshProvisioning, {});

  const refused = (value: string, message: RegExp) =>
    assert.throws(
      () => loadAgentConfig(['run'], [], { VMWARDEN_AGENT_SSH_PROVISIONING: value }),
      (e: unknown) => e instanceof AgentConfigError && message.test(String(e)),
      value,
    );
  refused('{not json', /sshProvisioning must be a JSON object/);
  refused('[1]', /sshProvisioning must be an object/);
  refused('{"a": 5}', /sshProvisioning\.a must be an object/);
  refused('{"a": {}}', /sshProvisioning\.a\.keyFile must be an absolute path/);
  refused('{"a": {"keyFile": "relative/key"}}', /keyFile must be an absolute path/);
  refused('{"a": {"keyFile": "/k", "port": 70000}}', /port must be a port number/);
  refused('{"a": {"keyFile": "/k", "port": "22"}}', /port must be a port number/);
  refused('{"a": {"keyFile": "/k", "address": "guest.example"}}', /address must be an IP address/);
  refused('{"a": {"keyFile": "/k", "hostKey": "MD5:aa"}}', /hostKey must be an OpenSSH SHA256 fingerprint/);
  refused(
    '{"a": {"keyFile": "/k", "user": "admin"}}',
    /unknown user; known: keyFile, port, address, hostKey/,
  );
});

test('controller: one address, a comma list (flag, environment) or a list (config file)', () => {
  const ctl = (argv: string[], env: NodeJS.ProcessEnv = {}) =>
    loadAgentConfig(['run', ...argv], [], env).config.controller;
  assert.equal(ctl([]), [], 'none given: the ones recorded at enrollment');
  assert.equal(ctl(['--controller', 'ctl-a:9363']), ['ctl-a:9363']);
  assert.equal(ctl(['--controller', 'ctl-a:9363, 10.0.0.2:9363,[fd00::3]:9363']), [
    'ctl-a:9363',
    '10.0.0.2:9363',
    '[fd00::3]:9363',
  ]);
  assert.equal(ctl([], { VMWARDEN_AGENT_CONTROLLER: 'a.example:1,b.example:2' }), [
    'a.example:1',
    'b.example:2',
  ]);
  const yaml = join(dir, 'controllers.yaml');
  writeFileSync(yaml, 'controller:\n  - ctl-a:9363\n  - ctl-b:9363\n');
  assert.equal(ctl(['--config', yaml]), ['ctl-a:9363', 'ctl-b:9363']);
  const json = join(dir, 'controllers.json');
  writeFileSync(json, JSON.stringify({ controller: 'ctl-a:9363,ctl-b:9363' }));
  assert.equal(ctl(['--config', json]), ['ctl-a:9363', 'ctl-b:9363']);

  const refused = (value: string, message: RegExp) =>
    assert.throws(
      () => ctl(['--controller', value]),
      (e: unknown) => e instanceof AgentConfigError && message.test(String(e)),
      value,
    );
  refused('', /--controller: controller: entry 1 is empty/);
  refused('a:1,,b:2', /--controller: controller: entry 2 is empty/);
  refused('a:1,', /entry 2 is empty/);
  refused('a:1, b', /entry 2 'b' is not HOST:PORT/);
  refused('http://a:9363', /entry 1 'http:\/\/a:9363' is not HOST:PORT/);
  refused(':9363', /is not HOST:PORT/);
  refused('a:0', /is not HOST:PORT \(a host name or IP, port 1-65535\)/);
  refused('a:70000', /is not HOST:PORT/);
  refused('fd00::3:9363', /is not HOST:PORT/);
  refused('a:1,a:1', /'a:1' is listed twice/);
  for (const [body, message] of [
    ['controller: []\n', /must name at least one HOST:PORT/],
    ['controller:\n  - a:1\n  - 5\n', /entry 2 is not a string/],
    ['controller:\n  port: 9363\n', /must be HOST:PORT, a comma-separated list of them, or a list/],
  ] as const) {
    const file = join(dir, 'bad-controllers.yaml');
    writeFileSync(file, body);
    assert.throws(
      () => ctl(['--config', file]),
      (e: unknown) =>
        e instanceof AgentConfigError &&
        /^config file .*: controller/.test((e as Error).message) &&
        message.test(String(e)),
      body,
    );
  }
});

test.run();
