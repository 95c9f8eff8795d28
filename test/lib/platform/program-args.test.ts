/** npm start's one command line for two programs: each flag to the program that has it. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { splitArgs } from '../../../lib/platform/program-args.js';
import { SETTINGS as CONTROLLER } from '../../../controller/src/config.js';
import { SETTINGS as AGENT } from '../../../agent/src/config.js';

test('agent-only flags go to the agent, shared ones to the controller, log flags to both', () => {
  const r = splitArgs(
    [
      '--libvirt-uri',
      'qemu:///system',
      '--listen-grpc',
      '127.0.0.1:1',
      '--listen-metrics=127.0.0.1:2',
      '--log-format',
      'json',
      '--session-idle-seconds',
      '60',
    ],
    CONTROLLER,
    AGENT,
  );
  assert.equal(r.first, [
    '--listen-grpc',
    '127.0.0.1:1',
    '--log-format',
    'json',
    '--session-idle-seconds',
    '60',
  ]);
  assert.equal(r.second, [
    '--libvirt-uri',
    'qemu:///system',
    '--listen-metrics=127.0.0.1:2',
    '--log-format',
    'json',
  ]);
});

test('--agent-<flag> reaches the agent even when the controller has the flag too', () => {
  const r = splitArgs(['--agent-listen-grpc', '127.0.0.1:3', '--agent-data-dir=/tmp/a'], CONTROLLER, AGENT);
  assert.equal(r.first, []);
  assert.equal(r.second, ['--listen-grpc', '127.0.0.1:3', '--data-dir=/tmp/a']);
});

test('unknown flags and positionals stay with the controller (whose parser refuses them)', () => {
  const r = splitArgs(['--no-such', '--libvirt-uri', 'test:///default', 'extra'], CONTROLLER, AGENT);
  assert.equal(r.first, ['--no-such', 'extra']);
  assert.equal(r.second, ['--libvirt-uri', 'test:///default']);
});

test.run();
