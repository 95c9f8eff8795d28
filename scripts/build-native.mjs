// Builds the agent's one native module (agent/native/mapped-sha256.c, Node-API) into
// dist/agent/native/ with the system C compiler and the headers of the node running this script.
// Without a compiler or headers it says so and exits 0: the hash workers then read with read() in
// JavaScript (slower for dense SHA-256, same digests). `npm run build` runs it; it rebuilds only
// when the source is newer than the module.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'agent/native/mapped-sha256.c');
const out = join(root, 'dist/agent/native/mapped-sha256.node');
const headers = [resolve(dirname(process.execPath), '../include/node'), '/usr/include/node'].find((d) =>
  existsSync(join(d, 'node_api.h')),
);
const cc = process.env.CC ?? 'cc';

if (existsSync(out) && statSync(out).mtimeMs >= statSync(source).mtimeMs) process.exit(0);
if (!headers) {
  console.warn(`build-native: no node_api.h next to ${process.execPath}: dense SHA-256 hashing uses read()`);
  process.exit(0);
}
mkdirSync(dirname(out), { recursive: true });
try {
  // OpenSSL's EVP functions are resolved against the node binary when the module loads: no -lcrypto
  execFileSync(
    cc,
    [
      '-O2',
      '-fPIC',
      '-shared',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-Wno-unused-parameter',
      '-pthread',
      `-I${headers}`,
      '-o',
      out,
      source,
    ],
    { stdio: 'inherit' },
  );
} catch (e) {
  console.warn(`build-native: ${cc} failed (${e.message}): dense SHA-256 hashing uses read()`);
}
