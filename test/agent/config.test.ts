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
  assert.is(config.controller, 'flag:3');
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

test.run();
