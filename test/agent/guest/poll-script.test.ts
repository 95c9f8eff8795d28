/**
 * The script of one guest poll, run by the local /bin/sh with a stand-in `journalctl` (a mock of the
 * guest's: it records its calls) on temporary journal and stamp files: journalctl is skipped only
 * while the journal file is older than the stamp the previous read touched.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollScript } from '../../../agent/src/guest/poller.js';

const dir = mkdtempSync(join(tmpdir(), 'vmwarden-poll-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const calls = join(dir, 'calls');
writeFileSync(join(dir, 'journalctl'), `#!/bin/sh\necho "$*" >> ${calls}\necho '-- cursor: s=1;i=2'\n`);
chmodSync(join(dir, 'journalctl'), 0o755);
const journalDir = join(dir, 'journal', 'machine');
const journal = join(journalDir, 'system.journal');
const files = { stamp: join(dir, 'stamp'), journals: `${join(dir, 'journal')}/*/system.journal` };

const poll = (mayskip: boolean, cursor?: string) => {
  rmSync(calls, { force: true });
  const r = spawnSync('/bin/sh', ['-c', pollScript(cursor, [process.pid, 999_999_999], mayskip, files)], {
    encoding: 'utf8',
    env: { PATH: `${dir}:/usr/bin:/bin` },
  });
  assert.is(r.status, 0, r.stderr);
  const [boot, journalPart, alive] = r.stdout.split(/^---$/m);
  return {
    boot: boot!.trim(),
    journal: journalPart!.trim(),
    alive: alive!.trim().split('\n'),
    called: existsSync(calls) ? readFileSync(calls, 'utf8').trim() : undefined,
  };
};
const at = (path: string, seconds: number) => utimesSync(path, seconds, seconds);

test('reads the boot id, the journal after the cursor and the live pids', () => {
  const r = poll(false, "s=a'b");
  assert.is(r.boot, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  assert.is(r.journal, '-- cursor: s=1;i=2');
  assert.is(r.called, "-u ssh.service -o short-unix --no-pager --show-cursor --after-cursor=s=a'b");
  assert.equal(r.alive, [String(process.pid)]);
  assert.match(poll(false).called ?? '', /--show-cursor -b$/);
});

test('skips journalctl only while the journal is older than the stamp of the last read', () => {
  // no journal file found: always read
  assert.ok(poll(true, 'c').called);
  spawnSync('mkdir', ['-p', journalDir]);
  writeFileSync(journal, 'x');
  const now = Date.now() / 1000;
  at(journal, now - 60);
  at(files.stamp, now - 120);
  assert.ok(poll(true, 'c').called, 'the stamp is older than the journal: read');
  at(files.stamp, now - 30);
  const skipped = poll(true, 'c');
  assert.is(skipped.called, undefined, 'journal unchanged since the stamp: skipped');
  assert.is(skipped.journal, '');
  at(journal, now - 10); // journald wrote since
  assert.ok(poll(true, 'c').called);
  // same timestamp (one tick of the coarse clock): not strictly newer, read
  at(files.stamp, now - 5);
  at(journal, now - 5);
  assert.ok(poll(true, 'c').called);
  // the agent did not read the last output (mayskip false): read even if unchanged
  at(files.stamp, now - 1);
  at(journal, now - 20);
  assert.ok(poll(false, 'c').called);
});

test.run();
