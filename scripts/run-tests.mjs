#!/usr/bin/env node
// Runs every compiled uvu test file (dist/test/**/*.test.js) in its own process group, one after
// another, so a crash or a leaked server in one file cannot take the others down. Optional arguments
// are substrings: only files whose path contains one of them run. Ends with "N passed, N failed".
//
// A file that does not end is ended: past its time limit (VMWARDEN_TEST_FILE_TIMEOUT seconds, default
// 1500), or when it is still running VMWARDEN_TEST_EXIT_GRACE seconds (default 30) after uvu printed
// its summary (open sockets or children keep it alive), its whole process group is killed and the
// file counts as failed, with the reason. So does a file that runs no test.
//
// Then the store and concern tests (dist/test/controller, dist/test/lib/store) run a second time on
// PostgreSQL: one throwaway cluster for the pass (test/helpers/postgres.ts), named to the files in
// VMWARDEN_TEST_PG; every controller they start gets its own database in it. A file whose head says
// `@store once` (it is about SQLite itself, or starts its own PostgreSQL) runs in the first pass only.
// VMWARDEN_TEST_STORES=sqlite (or postgres) runs one pass.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('../dist/test/', import.meta.url).pathname;
const filters = process.argv.slice(2);
const seconds = (name, fallback) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number of seconds`);
  return v * 1000;
};
const fileLimitMs = seconds('VMWARDEN_TEST_FILE_TIMEOUT', 1500);
const exitGraceMs = seconds('VMWARDEN_TEST_EXIT_GRACE', 30);

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith('.test.js')) found.push(path);
  }
  return found;
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

function runFile(file, rel, env = process.env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', file], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: children it leaves behind are ended with it
    });
    let out = '';
    let problem = '';
    let graceTimer;
    const end = (reason) => {
      if (problem || child.exitCode !== null) return;
      problem = reason;
      process.stdout.write(`\n!!! ${rel}: ${reason}; killing its process group\n`);
      killGroup(child);
    };
    const limitTimer = setTimeout(() => end(`still running after ${fileLimitMs / 1000} s`), fileLimitMs);
    child.stdout.on('data', (d) => {
      out += d;
      process.stdout.write(d);
      if (!graceTimer && /Duration:\s/.test(out)) {
        graceTimer = setTimeout(
          () => end(`did not exit ${exitGraceMs / 1000} s after its summary (open handles)`),
          exitGraceMs,
        );
      }
    });
    child.stderr.on('data', (d) => process.stderr.write(d));
    child.on('close', (code) => {
      clearTimeout(limitTimer);
      clearTimeout(graceTimer);
      const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0);
      const passed = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0);
      const skipped = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
      // A file that crashed, or was killed, counts as at least one failure even if its tests passed.
      let failed = total - passed - skipped;
      if ((code !== 0 || problem) && failed === 0) failed = 1;
      // A file that ran no test proves nothing: it fails too.
      if (!problem && total === 0) {
        problem = 'ran no test';
        failed = Math.max(failed, 1);
      }
      resolve({ passed, failed, skipped, code, problem });
    });
  });
}

// Filters match the path below dist/test/, not the checkout's own folder names.
const files = findTests(root).filter(
  (f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x)),
);
const stores = (process.env.VMWARDEN_TEST_STORES ?? 'sqlite,postgres').split(',');
const onPostgresToo = (f) =>
  (relative(root, f).startsWith('controller/') || relative(root, f).startsWith('lib/store/')) &&
  !/@store once/.test(readFileSync(f, 'utf8').slice(0, 4000));
let passed = 0;
let failed = 0;
let skipped = 0;
const failedFiles = [];
async function pass(label, list, env) {
  for (const file of list) {
    const rel = `${label}${relative(root, file)}`;
    process.stdout.write(`\n=== ${rel}\n`);
    const r = await runFile(file, rel, env);
    passed += r.passed;
    failed += r.failed;
    skipped += r.skipped;
    if (r.failed > 0 || r.code !== 0 || r.problem)
      failedFiles.push(r.problem ? `${rel} (${r.problem})` : rel);
  }
}
if (stores.includes('sqlite')) await pass('', files);
const pgFiles = stores.includes('postgres') ? files.filter(onPostgresToo) : [];
if (pgFiles.length) {
  const { startPostgres, describeCluster } = await import(join(root, 'helpers', 'postgres.js'));
  const cluster = startPostgres();
  try {
    await pass('[postgres] ', pgFiles, { ...process.env, VMWARDEN_TEST_PG: describeCluster(cluster) });
  } finally {
    await cluster.stop();
  }
}
if (files.length === 0) console.log(`no test file matches ${filters.join(' ')}`);
if (failedFiles.length) console.log(`\nfailing files: ${failedFiles.join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || failedFiles.length > 0 || files.length === 0 ? 1 : 0);
