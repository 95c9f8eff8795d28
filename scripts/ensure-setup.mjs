#!/usr/bin/env node
// Runs before `npm start` and `npm test` (npm's pre-scripts): does whatever set-up is missing on this
// machine, so the README's two commands work on a fresh one. Debian packages: scripts/install-deps.sh
// (idempotent; needs root only when something is missing). Node modules: `npm ci` when node_modules
// is absent or older than package-lock.json. Uses nothing but node's own modules.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`set-up: ${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(1);
  }
};

run('bash', ['scripts/install-deps.sh']);
const installed = `${root}node_modules/.package-lock.json`;
const stale =
  !existsSync(installed) || statSync(installed).mtimeMs < statSync(`${root}package-lock.json`).mtimeMs;
if (stale) run('npm', ['ci', '--no-audit', '--no-fund']);
