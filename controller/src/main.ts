#!/usr/bin/env node
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig, SETTINGS } from './config.js';
import { startController } from './server.js';
import { InsecureFileError } from '../../lib/platform/private-file.js';
import { ListenError } from '../../lib/platform/listen-error.js';
import { lifecycleLog } from '../../lib/platform/logger.js';
import { settingsUsage } from '../../lib/platform/settings-usage.js';
import { VERSION } from '../../lib/platform/version.js';

const STOP_DEADLINE_MS = 10_000;

async function main() {
  const argv = process.argv.slice(2);
  if (argv.includes('--version')) return void process.stdout.write(`vmwarden-controller ${VERSION}\n`);
  if (argv.includes('--help') || argv.includes('-h'))
    return void process.stdout.write(
      `usage: vmwarden-controller [flags]\n${settingsUsage(SETTINGS, 'VMWARDEN_CONFIG')}`,
    );
  const config = loadConfig(argv);
  const controller = await startController(config);
  const log = lifecycleLog(config.logFormat);
  // Start-up lines first, the "listening" line last: it is what supervisors and tests wait for.
  if (controller.initialAdminPassword) {
    const file = join(resolve(config.dataDir), 'admin-password');
    // Printed once, on the terminal only: under a service manager stdout is a log, so only the path goes there.
    if (process.stdout.isTTY)
      process.stdout.write(
        `\nInitial admin password: ${controller.initialAdminPassword}\n(also in ${file})\n\n`,
      );
    else log('initial admin identity created', { passwordFile: file });
  }
  // The CA fingerprint is what `vmwarden login https://… --fingerprint` checks the controller against.
  log('vmwarden controller listening', {
    endpoints: controller.endpoints,
    dataDir: resolve(config.dataDir),
    caFingerprint: `SHA256:${controller.services.ca.fingerprint}`,
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log('stopping', { signal });
    const deadline = setTimeout(() => {
      log('stop deadline passed, exiting');
      process.exit(1);
    }, STOP_DEADLINE_MS);
    deadline.unref();
    controller.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  const known = err instanceof ConfigError || err instanceof InsecureFileError || err instanceof ListenError;
  process.stderr.write(`vmwarden-controller: ${known ? err.message : (err as Error).stack}\n`);
  process.exit(known ? 2 : 1);
});
