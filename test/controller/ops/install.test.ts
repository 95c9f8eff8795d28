/** scripts/install-controller.sh into a staging root: layout, modes, unit, CLI link, no daemon-reload. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, tempDir } from '../access/util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

const script = fileURLToPath(new URL('../../../../scripts/install-controller.sh', import.meta.url));

test('installs into a staging root, idempotently', async () => {
  const { dir, cleanup } = await tempDir('vmwarden-install-test-');
  try {
    for (let i = 0; i < 2; i++) {
      const r = await run('bash', [script], {
        env: { ...process.env, VMWARDEN_ROOT: dir, VMWARDEN_SKIP_NPM: '1' },
      });
      assert.is(r.code, 0, r.stderr);
      assert.match(r.stdout, /installed to/);
    }
    const opt = join(dir, 'opt/vmwarden');
    assert.ok(existsSync(join(opt, 'dist/controller/src/main.js')));
    assert.ok(existsSync(join(opt, 'proto')));
    assert.is(statSync(join(opt, 'dist/controller/src/cli/main.js')).mode & 0o111, 0o111);
    assert.is(statSync(join(dir, 'var/lib/vmwarden')).mode & 0o777, 0o700);
    assert.match(
      readFileSync(join(dir, 'etc/vmwarden/controller.yaml'), 'utf8'),
      /dataDir: \/var\/lib\/vmwarden/,
    );
    const unit = readFileSync(join(dir, 'etc/systemd/system/vmwarden-controller.service'), 'utf8');
    assert.match(unit, /ExecStart=.*\/opt\/vmwarden\/dist\/controller\/src\/main\.js/);
    assert.is(
      readlinkSync(join(dir, 'usr/local/bin/vmwarden')),
      '/opt/vmwarden/dist/controller/src/cli/main.js',
    );
  } finally {
    await cleanup();
  }
});

test.run();
