// What scripts/ensure-setup.mjs decides, as pure functions of what it found (tests check every case
// without apt or npm). Node's own modules only: this runs before `npm ci`.

/**
 * How to install the missing Debian packages: as root directly, else through `sudo -n` (never a
 * password prompt in the middle of `npm start`), else a message saying what to run.
 * `missing` null: no dpkg on this system (not Debian): nothing to do, a warning.
 */
export function packagesStep({ missing, uid, sudoWorks }) {
  if (missing === null)
    return {
      warn: 'set-up: no dpkg-query here (not Debian?): install the equivalents of scripts/install-deps.sh yourself',
    };
  if (missing.length === 0) return {};
  const script = ['bash', 'scripts/install-deps.sh'];
  if (uid === 0) return { run: script };
  if (sudoWorks) return { run: ['sudo', '-n', ...script] };
  return {
    fail:
      `set-up: missing Debian packages: ${missing.join(' ')}\n` +
      'set-up: installing them needs root, and sudo cannot run here without a password; run\n' +
      '  sudo bash scripts/install-deps.sh\n' +
      'then npm start (or npm test) again.',
  };
}

/**
 * Why node_modules must be (re)installed with `npm ci`, or null when it matches package-lock.json:
 * every package the lock file names is installed at its locked version (npm's own record of what it
 * installed, node_modules/.package-lock.json). Optional packages (other platforms' binaries) may be absent.
 */
export function nodeModulesStale(lock, installed) {
  if (!installed) return 'node_modules is absent';
  const have = installed.packages ?? {};
  for (const [path, entry] of Object.entries(lock.packages ?? {})) {
    if (!path.startsWith('node_modules/') || entry.link) continue;
    const got = have[path];
    if (!got) {
      if (entry.optional) continue;
      return `${path.slice('node_modules/'.length)} is not installed`;
    }
    if (got.version !== entry.version)
      return `${path.slice('node_modules/'.length)} is ${got.version}, package-lock.json says ${entry.version}`;
  }
  return null;
}
