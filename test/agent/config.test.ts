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

test.run();
