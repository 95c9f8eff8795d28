import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { newPassword } from '../../../controller/src/platform/secrets.js';

test('generated passwords are 24 URL-safe characters and never start with "-" (read as an option)', () => {
  const seen = new Set<string>();
  // One in 64 base64url strings starts with '-': 10,000 draws would all but surely include some.
  for (let i = 0; i < 10_000; i++) {
    const p = newPassword();
    assert.match(p, /^[A-Za-z0-9_][A-Za-z0-9_-]{23}$/);
    seen.add(p);
  }
  assert.is(seen.size, 10_000);
});

test.run();
