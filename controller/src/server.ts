import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { VERSION } from '../../lib/platform/version.js';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import cron from 'node-cron';
import type { FastifyInstance } from 'fastify';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { createLogger } from '../../lib/platform/logger.js';
import { systemClock, type Clock } from '../../lib/platform/clock.js';
import { writePrivateFile } from '../../lib/platform/private-file.js';
import { keyEncryptionKeyPath, serverNames, type ControllerConfig } from './config.js';
import { parseHostPort } from '../../lib/platform/host-port.js';
import { listenOn } from '../../lib/platform/listen-error.js';
import { openDatabase } from '../../lib/store/database.js';
import { migrate } from '../../lib/store/migrations.js';
import { allMigrations } from './store/registry.js';
import { InternalCa } from './pki/internal-ca.js';
import { KeyEncryptionKey } from './pki/kek.js';
import { createServices, type ControllerServices } from './services.js';
import { runOncePerTick } from './ops/cluster-jobs.js';
import { buildHttpApp } from './http/app.js';
import { startGrpcServer, stopGrpcServer } from './grpc/server.js';

export interface Endpoints {
  http?: string;
  https?: string;
  grpc?: string;
}

export interface Controller {
  endpoints: Endpoints;
  services: ControllerServices;
  /** The controller's log (JSON lines, or human-readable on a terminal). */
  log: Logger;
  /** Set on the very first start only: the generated admin password. */
  initialAdminPassword?: string;
  stop(): Promise<void>;
}

export { VERSION };

const fmt = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

async function listen(app: FastifyInstance, address: string, setting: string): Promise<string> {
  const { host, port } = parseHostPort(address);
  await listenOn(setting, address, () => app.listen({ host, port }));
  return fmt(host, (app.server.address() as AddressInfo).port);
}

/** Starts the controller: store, internal CA, REST (HTTP + HTTPS), gRPC, housekeeping jobs. */
export async function startController(
  config: ControllerConfig,
  opts: { clock?: Clock; controllerId?: string; log?: Logger } = {},
): Promise<Controller> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  mkdirSync(join(dataDir, 'pki'), { recursive: true, mode: 0o700 });

  const db = await openDatabase(config.database || join(dataDir, 'controller.db'));
  let ca: InternalCa, services: ControllerServices, initialAdminPassword: string | undefined;
  let serverTls: { key: string; cert: string };
  try {
    await migrate(db, allMigrations);
    const kek = await KeyEncryptionKey.open(db, keyEncryptionKeyPath({ ...config, dataDir }), clock);
    ca = await InternalCa.openOrCreate(db, kek, join(dataDir, 'pki'), clock);
    // One id per running controller (not per host or data dir): task leases tell controllers apart by it.
    const controllerId = opts.controllerId ?? randomUUID();
    services = await createServices({ ...config, dataDir }, db, ca, kek, clock, VERSION, controllerId);
    initialAdminPassword = await services.identities.bootstrapAdmin(dataDir);
    serverTls = await ca.serverCredentials(join(dataDir, 'pki'), serverNames(config));
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }

  const apps: FastifyInstance[] = [];
  const timeouts = {
    headersMs: config.httpHeadersTimeoutSeconds * 1000,
    requestMs: config.httpRequestTimeoutSeconds * 1000,
  };
  let grpcServer: grpc.Server | undefined;
  const endpoints: Endpoints = {};
  // Every minute on every controller; a cluster job runs on the one controller that claims its tick.
  const everyMinute = (job: () => Promise<unknown>) =>
    cron.schedule('* * * * *', () => void job().catch(() => undefined));
  const onceAMinute = (name: string, job: () => Promise<unknown>) =>
    cron.schedule('* * * * *', (ctx) => void runOncePerTick(db, name, ctx.date, job).catch(() => undefined));
  const housekeeping = [
    everyMinute(() => services.sessions.forgetIdle()),
    onceAMinute('sessions.sweep', () => services.sessions.sweep()),
    onceAMinute('access.markExpired', () => services.access.markExpired()),
    onceAMinute('login-attempts.cleanup', () => services.loginAttempts.cleanup()),
  ];

  services.trustSync.start();
  services.hostCa.start();
  const stop = async () => {
    for (const job of housekeeping) await job.stop();
    await services.trustSync.stop();
    services.hostCa.stop();
    await services.tasks.stop();
    await Promise.all([
      ...apps.map((a) => a.close()),
      grpcServer ? stopGrpcServer(grpcServer, 5000) : Promise.resolve(),
    ]);
    services.agents.close();
    await services.sessions.flush();
    await db.close();
  };

  try {
    if (config.listenHttp) {
      const app = buildHttpApp(services, undefined, timeouts, log);
      apps.push(app);
      endpoints.http = await listen(app, config.listenHttp, 'listenHttp');
    }
    if (config.listenHttps) {
      const app = buildHttpApp(services, { ...serverTls, ca: ca.certPem }, timeouts, log);
      apps.push(app);
      endpoints.https = await listen(app, config.listenHttps, 'listenHttps');
    }
    if (config.listenGrpc) {
      const { host, port } = parseHostPort(config.listenGrpc);
      const started = await listenOn('listenGrpc', config.listenGrpc, () =>
        startGrpcServer(host, port, { ...serverTls, ca: ca.certPem }, services, () =>
          endpoints.https ? `https://${endpoints.https}` : '',
        ),
      );
      grpcServer = started.server;
      endpoints.grpc = fmt(host, started.port);
    }
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  services.tasks.start();
  writePrivateFile(join(dataDir, 'endpoints.json'), `${JSON.stringify(endpoints, null, 2)}\n`);
  return { endpoints, services, log, initialAdminPassword, stop };
}
