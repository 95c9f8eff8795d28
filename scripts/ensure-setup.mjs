#!/usr/bin/env node
// Runs before `npm start` and `npm test` (npm's pre-scripts): does whatever set-up is missing on this
// machine, so the README's two commands work on a fresh one. Debian packages: scripts/install-deps.sh,
// as root, or through `sudo -n` for a user with sudo. Node modules: `npm ci` when node_modules is
// absent or does not match package-lock.json. Uses nothing but node's own modules.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { nodeModulesStale, packagesStep } from './setup-plan.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`set-up: ${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(1);
  }
};
const quiet = (cmd, args) =>
  spawnSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

const listed = quiet('bash', ['scripts/install-deps.sh', '--list-missing']);
const missing = listed.status === 3 ? null : listed.stdout.split('\n').filter(Boolean);
const uid = process.getuid?.() ?? 0;
const step = packagesStep({
  missing,
  uid,
  sudoWorks: uid !== 0 && missing?.length ? quiet('sudo', ['-n', 'true']).status === 0 : false,
});
if (step.warn) process.stderr.write(`${step.warn}\n`);
if (step.fail) {
  process.stderr.write(`${step.fail}\n`);
  process.exit(1);
}
if (step.run) run(step.run[0], step.run.slice(1));

const readJson = (file) => (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined);
const stale = nodeModulesStale(
  readJson(`${root}package-lock.json`),
  readJson(`${root}node_modules/.package-lock.json`),
);
if (stale) {
  process.stderr.write(`set-up: ${stale}: npm ci\n`);
  run('npm', ['ci', '--no-audit', '--no-fund']);
}
