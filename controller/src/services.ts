import type { Clock } from './platform/clock.js';
import { FailureLimiter } from './platform/rate-limit.js';
import type { ControllerConfig } from './config.js';
import type { Database } from './store/database.js';
import type { InternalCa } from './pki/internal-ca.js';
import { ApiSessions } from './identity/sessions.js';
import { Logins } from './identity/logins.js';
import { Identities } from './identity/identities.js';
import { OwnAuthenticators } from './identity/authenticators.js';
import { SqliteIdentityStore, SqliteSessionStore, type IdentityStore } from './identity/store.js';

/** Everything the transports (REST, gRPC, cron) call into. Built once per controller. */
export interface ControllerServices {
  version: string;
  config: ControllerConfig;
  clock: Clock;
  ca: InternalCa;
  identityStore: IdentityStore;
  sessions: ApiSessions;
  logins: Logins;
  identities: Identities;
  authenticators: OwnAuthenticators;
}

export function createServices(
  config: ControllerConfig,
  db: Database,
  ca: InternalCa,
  clock: Clock,
  version: string,
): ControllerServices {
  const identityStore = new SqliteIdentityStore(db);
  const sessions = new ApiSessions(
    new SqliteSessionStore(db),
    identityStore,
    clock,
    config.sessionIdleSeconds * 1000,
  );
  const windowMs = config.loginFailureWindowSeconds * 1000;
  const logins = new Logins(identityStore, sessions, {
    byUsername: new FailureLimiter(config.loginMaxFailuresPerUsername, windowMs, clock),
    byAddress: new FailureLimiter(config.loginMaxFailuresPerAddress, windowMs, clock),
  });
  return {
    version,
    config,
    clock,
    ca,
    identityStore,
    sessions,
    logins,
    identities: new Identities(identityStore, sessions, ca, clock, config.clientCertDays),
    authenticators: new OwnAuthenticators(identityStore, ca, clock, config.clientCertDays),
  };
}
