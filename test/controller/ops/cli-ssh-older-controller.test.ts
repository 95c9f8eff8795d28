/**
 * The CLI against a controller older than the host CA (GET /v1/access/host-ca-pubkeys is 404): no
 * known_hosts of its own is written, `vmwarden ssh` and `config-ssh` leave host keys to the user's
 * own known_hosts, and the warning is one line.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client } from '../../../controller/src/cli/client.js';
import {
  hostCaKnownHosts,
  knownHostsFile,
  NO_HOST_CA_WARNING,
} from '../../../controller/src/cli/ssh/host-trust.js';
import { renderSshConfig } from '../../../controller/src/cli/ssh/ssh-config.js';
import { tempDir } from '../access/util.js';

let server: Server;
let dir = '';
let cleanup = async () => {};
let savedXdg: string | undefined;

test.before(async () => {
  ({ dir, cleanup } = await tempDir('vmwarden-cli-older-'));
  savedXdg = process.env.XDG_CONFIG_HOME;
  process.env.XDG_CONFIG_HOME = join(dir, 'cfg');
  // Every route unknown, in the controller's own error format.
  server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'not found', code: 'NOT_FOUND' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

test.after(async () => {
  server?.close();
  if (savedXdg === undefined) delete process.env.XDG_CONFIG_HOME;
  else process.env.XDG_CONFIG_HOME = savedXdg;
  await cleanup();
});

test('no host CA route: no known_hosts written, ssh_config leaves host keys to the user', async () => {
  const client = new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'token');
  assert.is(await hostCaKnownHosts(client), undefined);
  assert.not.ok(existsSync(knownHostsFile()));
  const text = renderSshConfig({
    domain: 'vmw',
    controllerUrl: client.url,
    cli: ['/usr/bin/node', '/opt/vmwarden/main.js'],
    keyFile: join(dir, 'id_ed25519'),
    certsDir: join(dir, 'certs'),
    instances: [],
  });
  assert.not.match(text, /UserKnownHostsFile|StrictHostKeyChecking/);
  assert.match(text, /# no host CA on the controller/);
});

test('the warning is one line', () => {
  assert.is(NO_HOST_CA_WARNING.split('\n').length, 2);
  assert.match(NO_HOST_CA_WARNING, /^vmwarden: warning: .*no host CA.*your own known_hosts\n$/);
});

test.run();
