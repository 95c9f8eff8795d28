import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../../lib/platform/clock.js';

test('manual clock moves only when advanced', () => {
  const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'));
  assert.is(clock.now().toISOString(), '2026-01-01T00:00:00.000Z');
  clock.advance(1500);
  assert.is(clock.now().toISOString(), '2026-01-01T00:00:01.500Z');
});

test.run();
