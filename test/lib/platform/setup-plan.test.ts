/** scripts/ensure-setup.mjs's decisions (Debian packages, node_modules), without apt or npm. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPTS = fileURLToPath(new URL('../../../../scripts/', import.meta.url));
type Step = { run?: string[]; fail?: string; warn?: string };
type Lock = { packages: Record<string, { version?: string; optional?: boolean; link?: boolean }> };
let plan: {
  packagesStep(o: { missing: string[] | null; uid: number; sudoWorks: boolean }): Step;
  nodeModulesStale(lock: Lock, installed: Lock | undefined): string | null;
};

test.before(async () => {
  plan = await import(join(SCRIPTS, 'setup-plan.mjs'));
});

test('nothing missing: nothing to run, root or not', () => {
  assert.equal(plan.packagesStep({ missing: [], uid: 0, sudoWorks: false }), {});
  assert.equal(plan.packagesStep({ missing: [], uid: 1000, sudoWorks: false }), {});
});

test('root installs directly, without sudo', () => {
  assert.equal(plan.packagesStep({ missing: ['jq'], uid: 0, sudoWorks: false }), {
    run: ['bash', 'scripts/install-deps.sh'],
  });
});

test('a user with sudo installs through sudo -n (never a password prompt)', () => {
  assert.equal(plan.packagesStep({ missing: ['jq', 'b3sum'], uid: 1000, sudoWorks: true }), {
    run: ['sudo', '-n', 'bash', 'scripts/install-deps.sh'],
  });
});

test('a user without usable sudo gets what is missing and what to run', () => {
  const step = plan.packagesStep({ missing: ['jq', 'b3sum'], uid: 1000, sudoWorks: false });
  assert.is(step.run, undefined);
  assert.match(step.fail!, /missing Debian packages: jq b3sum/);
  assert.match(step.fail!, /sudo bash scripts\/install-deps\.sh/);
});

test('no dpkg: a warning, nothing run', () => {
  const step = plan.packagesStep({ missing: null, uid: 1000, sudoWorks: true });
  assert.is(step.run, undefined);
  assert.is(step.fail, undefined);
  assert.match(step.warn!, /install-deps\.sh/);
});

test('node_modules: absent, a package missing or at another version is stale; optional ones may be absent', () => {
  const lock: Lock = {
    packages: {
      '': { version: '0.1.0' },
      'node_modules/a': { version: '1.0.0' },
      'node_modules/a/node_modules/b': { version: '2.0.0' },
      'node_modules/@esbuild/other-os': { version: '0.1.0', optional: true },
    },
  };
  const same: Lock = {
    packages: {
      'node_modules/a': { version: '1.0.0' },
      'node_modules/a/node_modules/b': { version: '2.0.0' },
    },
  };
  assert.is(plan.nodeModulesStale(lock, same), null);
  assert.is(plan.nodeModulesStale(lock, undefined), 'node_modules is absent');
  assert.match(
    plan.nodeModulesStale(lock, { packages: { 'node_modules/a': { version: '1.0.0' } } })!,
    /a\/node_modules\/b is not installed/,
  );
  assert.match(
    plan.nodeModulesStale(lock, {
      packages: { ...same.packages, 'node_modules/a': { version: '0.9.0' } },
    })!,
    /a is 0\.9\.0, package-lock\.json says 1\.0\.0/,
  );
});

test('install-deps.sh --list-missing changes nothing; exit 3 without dpkg-query', () => {
  const listed = spawnSync('bash', [join(SCRIPTS, 'install-deps.sh'), '--list-missing'], {
    encoding: 'utf8',
  });
  assert.is(listed.status, 0, listed.stderr);
  for (const line of listed.stdout.split('\n').filter(Boolean)) assert.match(line, /^[a-z0-9.+-]+$/);
  // a PATH with bash only: no dpkg-query
  const bin = mkdtempSync(join(tmpdir(), 'vmwarden-nodpkg-'));
  try {
    symlinkSync(
      spawnSync('bash', ['-c', 'command -v bash'], { encoding: 'utf8' }).stdout.trim(),
      join(bin, 'bash'),
    );
    const r = spawnSync(join(bin, 'bash'), [join(SCRIPTS, 'install-deps.sh'), '--list-missing'], {
      env: { PATH: bin },
      encoding: 'utf8',
    });
    assert.is(r.status, 3, r.stderr);
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});

test.run();
