/** The in-memory AttemptThrottle on its own: reservations, windows, bounded memory; address keys. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../../lib/platform/clock.js';
import { MemoryAttemptThrottle } from '../../../controller/src/platform/rate-limit.js';
import { addressKey } from '../../../controller/src/identity/login-throttle.js';

const rules = { a: { limit: 3, windowMs: 10_000 }, b: { limit: 100, windowMs: 10_000 } };
const k = (key: string, rule = 'a') => ({ rule, key });

async function reserve(t: MemoryAttemptThrottle, ...keys: { rule: string; key: string }[]) {
  const r = await t.reserve(keys);
  if (!r.granted) throw new Error(`refused by ${r.rule}`);
  return r.reservation;
}

test('attempts in flight count against the limit; a release frees the slot, a failure keeps it', async () => {
  const clock = new ManualClock();
  const t = new MemoryAttemptThrottle(rules, clock);
  const held = [await reserve(t, k('x')), await reserve(t, k('x')), await reserve(t, k('x'))];
  const refused = await t.reserve([k('x')]);
  assert.ok(!refused.granted && refused.rule === 'a' && refused.retryAfterSeconds === 1);
  await held[0]!.release();
  await held[0]!.fail(); // settled already: no effect
  const again = await reserve(t, k('x'));
  await held[1]!.fail();
  await held[2]!.fail();
  await again.fail();
  const full = await t.reserve([k('x')]);
  assert.ok(!full.granted && full.retryAfterSeconds === 10, JSON.stringify(full));
  clock.advance(10_001);
  assert.ok((await t.reserve([k('x')])).granted);
});

test('all or none: a refused key takes no slot on the others', async () => {
  const t = new MemoryAttemptThrottle(rules, new ManualClock());
  for (let i = 0; i < 3; i++) await (await reserve(t, k('full'))).fail();
  for (let i = 0; i < 50; i++) assert.not.ok((await t.reserve([k('y', 'b'), k('full')])).granted);
  for (let i = 0; i < 100; i++) await reserve(t, k('y', 'b')); // 'b' still has its whole budget
  assert.not.ok((await t.reserve([k('y', 'b')])).granted);
});

test('memory is bounded: expired and released keys are dropped, the table is capped', async () => {
  const clock = new ManualClock();
  const t = new MemoryAttemptThrottle(rules, clock, 1000);
  for (let i = 0; i < 500; i++) await (await reserve(t, k(`ok-${i}`))).release();
  assert.is(t.size('a'), 0, 'successes leave nothing behind');
  for (let i = 0; i < 5000; i++) await (await reserve(t, k(`bad-${i}`))).fail();
  assert.ok(t.size('a') <= 1000, String(t.size('a')));
  // the most recently failed keys are the ones kept
  for (let i = 0; i < 2; i++) await (await reserve(t, k('bad-4999'))).fail();
  assert.not.ok((await t.reserve([k('bad-4999')])).granted);
  clock.advance(10_001);
  await (await reserve(t, k('fresh'))).release();
  assert.ok(t.size('a') <= 1000);
  // a long key is stored by digest
  await (await reserve(t, k('u'.repeat(100_000)))).fail();
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
