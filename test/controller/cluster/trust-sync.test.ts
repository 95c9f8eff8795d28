/**
 * TrustSync's catch-up: a controller that hears no notification at all (its listener never fires)
 * still picks up another controller's CA rotation and revocation within one catch-up period, and
 * republishes the KRL to its agents. On both stores (two Database handles on one store).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../../lib/platform/clock.js';
import { KeyEncryptionKey } from '../../../controller/src/pki/kek.js';
import { SshAuthority } from '../../../controller/src/access/authority.js';
import { SqliteAccessStore } from '../../../controller/src/access/store.js';
import { KrlPublisher, type PublishedKrl } from '../../../controller/src/access/krl-publisher.js';
import { TrustSync } from '../../../controller/src/access/trust-sync.js';
import type { Database } from '../../../lib/store/database.js';
import { openShared, type SharedDb } from '../../helpers/shared-db.js';
import { waitFor, watchdog } from '../../helpers/wait.js';

watchdog(60);

let shared: SharedDb;
const dir = mkdtempSync(join(tmpdir(), 'vmwarden-trust-sync-'));
const kekFile = join(dir, 'cluster.key');
const syncs: TrustSync[] = [];

test.before(async () => {
  shared = await openShared(2);
  writeFileSync(kekFile, randomBytes(32).toString('base64'), { mode: 0o600 });
});
test.after(async () => {
  for (const s of syncs) await s.stop();
  await shared.close();
  rmSync(dir, { recursive: true, force: true });
});

async function controller(db: Database, deaf: boolean) {
  const kek = await KeyEncryptionKey.open(db, kekFile, systemClock);
  const store = new SqliteAccessStore(db);
  const authority = await SshAuthority.open(store, kek, systemClock, 'ed25519');
  const krl = new KrlPublisher(store, authority, systemClock);
  // A deaf controller's notifications never arrive (as if its listening connection were lost).
  const bus = deaf ? { listen: () => () => undefined, notify: async () => undefined } : db;
  const sync = new TrustSync(bus, authority, krl, 300);
  sync.start();
  syncs.push(sync);
  const published: PublishedKrl[] = [];
  krl.events.on('krl', (k: PublishedKrl) => published.push(k));
  await krl.current();
  return { authority, krl, published };
}

test('a controller that misses every notification catches up within its catch-up period', async () => {
  const [dbA, dbB] = shared.dbs as [Database, Database];
  const a = await controller(dbA, false);
  const b = await controller(dbB, true);
  assert.is(b.authority.active().key.fingerprint, a.authority.active().key.fingerprint);

  const rotated = await a.authority.rotate();
  await a.krl.changed();
  const t0 = Date.now();
  await waitFor(
    'B signs with A’s new key',
    () => b.authority.active().key.fingerprint === rotated.fingerprint,
    {
      timeoutMs: 3000,
      intervalMs: 20,
    },
  );
  await waitFor('B republished its KRL', () => b.published.some((k) => k.version === a.krl.version), {
    timeoutMs: 3000,
    intervalMs: 20,
  });
  assert.ok(Date.now() - t0 < 1500, `caught up in ${Date.now() - t0} ms (period 300 ms)`);
  assert.equal(
    b.authority.trusted().map((c) => c.fingerprint),
    a.authority.trusted().map((c) => c.fingerprint),
  );
});

test.run();
