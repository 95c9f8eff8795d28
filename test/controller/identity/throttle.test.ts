/**
 * The AttemptThrottle on its own, on a real database: reservations, windows, reservations left by a
 * dead controller, cleanup; two instances on one database standing in for two controllers; address keys.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../../lib/platform/clock.js';
import { DatabaseAttemptThrottle, RESERVATION_MS } from '../../../controller/src/identity/attempt-store.js';
import { addressKey } from '../../../controller/src/identity/login-throttle.js';
import type { AttemptThrottle } from '../../../controller/src/platform/rate-limit.js';
import type { Database } from '../../../lib/store/database.js';
import { openShared, type SharedDb } from '../../helpers/shared-db.js';

const rules = { a: { limit: 3, windowMs: 10_000 }, b: { limit: 100, windowMs: 10_000 } };
const k = (key: string, rule = 'a') => ({ rule, key });

let shared: SharedDb;
test.before(async () => {
  shared = await openShared(2);
});
test.after(async () => {
  await shared.close();
});

/** A throttle on its own counters: a fresh set of keys per test, so tests do not share them. */
let run = 0;
function throttle(clock: ManualClock, db = 0) {
  run++;
  const t = new DatabaseAttemptThrottle(shared.dbs[db]!, rules, clock);
  const prefix = `run${run}:`;
  return { t, key: (key: string, rule = 'a') => k(prefix + key, rule) };
}

async function reserve(t: AttemptThrottle, ...keys: { rule: string; key: string }[]) {
  const r = await t.reserve(keys);
  if (!r.granted) throw new Error(`refused by ${r.rule}`);
  return r.reservation;
}

async function rowCount(db: Database) {
  const r = await db.get<{ n: number }>('SELECT count(*) AS n FROM login_attempts');
  return Number(r!.n);
}

test('attempts in flight count against the limit; a release frees the slot, a failure keeps it', async () => {
  const clock = new ManualClock();
  const { t, key } = throttle(clock);
  const held = [await reserve(t, key('x')), await reserve(t, key('x')), await reserve(t, key('x'))];
  const refused = await t.reserve([key('x')]);
  assert.ok(!refused.granted && refused.rule === 'a' && refused.retryAfterSeconds === 1);
  await held[0]!.release();
  await held[0]!.fail(); // settled already: no effect
  const again = await reserve(t, key('x'));
  await held[1]!.fail();
  await held[2]!.fail();
  await again.fail();
  const full = await t.reserve([key('x')]);
  assert.ok(!full.granted && full.retryAfterSeconds === 10, JSON.stringify(full));
  clock.advance(10_001);
  assert.ok((await t.reserve([key('x')])).granted);
});

test('all or none: a refused key takes no slot on the others', async () => {
  const { t, key } = throttle(new ManualClock());
  for (let i = 0; i < 3; i++) await (await reserve(t, key('full'))).fail();
  for (let i = 0; i < 50; i++) assert.not.ok((await t.reserve([key('y', 'b'), key('full')])).granted);
  for (let i = 0; i < 100; i++) await reserve(t, key('y', 'b')); // 'b' still has its whole budget
  assert.not.ok((await t.reserve([key('y', 'b')])).granted);
});

test('a reservation never settled (its controller died) counts while in flight, then as a failure in its window', async () => {
  const clock = new ManualClock();
  const { t, key } = throttle(clock);
  for (let i = 0; i < 3; i++) await reserve(t, key('u')); // never settled
  const inFlight = await t.reserve([key('u')]);
  assert.ok(!inFlight.granted && inFlight.retryAfterSeconds === 1);
  clock.advance(rules.a.windowMs + 1); // past the window, not past the reservations' time
  assert.not.ok((await t.reserve([key('u')])).granted);
  clock.advance(RESERVATION_MS - rules.a.windowMs); // failures at their reservation time: out of the window
  assert.ok((await t.reserve([key('u')])).granted, 'an abandoned reservation does not lock out for ever');
});

test('retry-after counts abandoned reservations as failures at their time', async () => {
  const clock = new ManualClock();
  const t = new DatabaseAttemptThrottle(shared.dbs[0]!, { a: { limit: 2, windowMs: 120_000 } }, clock);
  const key = { rule: 'a', key: `retry-${Date.now()}` };
  await reserve(t, key); // abandoned at 0
  clock.advance(10_000);
  await (await reserve(t, key)).fail(); // failure at 10 s
  clock.advance(RESERVATION_MS); // 70 s: the abandoned one now counts as a failure at 0
  const r = await t.reserve([key]);
  assert.ok(!r.granted && r.retryAfterSeconds === 50, JSON.stringify(r)); // frees at 120 s
});

test('two throttles on one database (two controllers) share the counters, also concurrently', async () => {
  const clock = new ManualClock();
  const one = throttle(clock, 0);
  const two = new DatabaseAttemptThrottle(shared.dbs[1]!, rules, clock);
  const key = one.key('shared');
  const attempts = await Promise.all(
    Array.from({ length: 40 }, (_, i) => (i % 2 ? one.t : two).reserve([key, one.key('other', 'b')])),
  );
  const granted = attempts.filter((r) => r.granted);
  assert.is(granted.length, rules.a.limit, 'never more attempts in flight than the limit');
  for (const r of granted) if (r.granted) await r.reservation.fail();
  assert.not.ok((await two.reserve([key])).granted);
  assert.not.ok((await one.t.reserve([key])).granted);
});

test('cleanup deletes the rows no window counts; a long key is stored by its digest', async () => {
  const own = await openShared(1);
  try {
    const clock = new ManualClock();
    const t = new DatabaseAttemptThrottle(own.dbs[0]!, rules, clock);
    for (let i = 0; i < 5; i++) await (await reserve(t, k(`bad-${i}`))).fail();
    await reserve(t, k('abandoned'));
    const long = k('u'.repeat(100_000));
    for (let i = 0; i < 3; i++) await (await reserve(t, long)).fail();
    assert.not.ok((await t.reserve([long])).granted);
    const stored = await own.dbs[0]!.all<{ subject: string }>('SELECT DISTINCT subject FROM login_attempts');
    assert.ok(stored.every((r) => r.subject.length <= 256));
    await t.recordFailure([k('old', 'b')]);
    clock.advance(rules.a.windowMs + 1);
    await t.cleanup();
    assert.is(await rowCount(own.dbs[0]!), 1, 'the reservation in flight is kept');
    await t.recordFailure([k('new', 'b')]);
    clock.advance(RESERVATION_MS);
    await t.recordFailure([k('newest', 'b')]);
    assert.is(await t.cleanup(), 2);
    assert.is(await rowCount(own.dbs[0]!), 1, 'only the failure inside its window is left');
  } finally {
    await own.close();
  }
});

test('address keys: IPv4 as is, IPv4-mapped unwrapped, IPv6 by /64', () => {
  assert.is(addressKey('127.0.0.2'), '127.0.0.2');
  assert.is(addressKey('::ffff:10.1.2.3'), '10.1.2.3');
  assert.is(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.is(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  assert.is(addressKey('2001:0db8:0001:0002::9'), '2001:db8:1:2::/64');
  assert.is(addressKey('::1'), '0:0:0:0::/64');
  assert.is(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.is(addressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
});

test.run();
