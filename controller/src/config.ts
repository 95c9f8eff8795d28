import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, layerSettings, type SettingSpec } from '../../lib/platform/layered-config.js';
import { parseHostPort } from '../../lib/platform/host-port.js';
import { isPostgresUrl } from '../../lib/store/database.js';
import { isLogFormat, LOG_FORMATS, type LogFormat } from '../../lib/platform/logger.js';

export { ConfigError };

/** Controller configuration. Precedence: flags > environment (VMWARDEN_*) > config file > defaults. */
export interface ControllerConfig {
  dataDir: string;
  /** '' for SQLite in the data dir; a postgres:// URL for a store several controllers share. */
  database: string;
  /**
   * The cluster's key-encryption key (32 random bytes, base64, mode 0600), which seals the CA private
   * keys in the database; '' means `<dataDir>/cluster.key`. Every controller of a cluster needs a copy.
   */
  keyEncryptionKeyFile: string;
  listenHttp: string;
  listenHttps: string;
  listenGrpc: string;
  /** Extra DNS names / IPs for the HTTPS server certificate (localhost and the hostname are always in). */
  serverNames: string[];
  sessionIdleSeconds: number;
  /** Wrong passwords for one username from one address, per loginFailureWindowSeconds. */
  loginMaxFailuresPerUsername: number;
  /** Failed logins from one address over all usernames (and failed certificate logins), per window. */
  loginMaxFailuresPerAddress: number;
  loginFailureWindowSeconds: number;
  /** Wrong passwords for one username from any address, per loginAnyAddressWindowSeconds. */
  loginMaxFailuresPerUsernameAnyAddress: number;
  loginAnyAddressWindowSeconds: number;
  clientCertDays: number;
  logLevel: string;
  /** auto (human-readable on a terminal, JSON lines otherwise), json or pretty. */
  logFormat: LogFormat;
  /** Key type of newly created SSH CA keys. */
  sshCaKeyType: 'ed25519' | 'ecdsa-p256' | 'rsa';
  certDefaultTtlMinutes: number;
  certMaxTtlMinutes: number;
  /** Lifetime of the host certificates signed for guests' sshd (agents renew them at 2/3 of it). */
  hostCertDays: number;
  certExtensions: string[];
  certForceCommand: string;
  /** '' none, 'caller' (the requesting client's address) or a comma-separated CIDR list. */
  certSourceAddress: string;
  /** Login user recorded for instances that agents report (guests get this user; see the trust issue). */
  defaultLoginUser: string;
  /** File digest of the fleet's new signatures, told to every agent in the trust bundle. */
  signatureDigest: 'sha256' | 'blake3';
  /** REST: a client must send its request line and headers within this time (else 408, connection closed). */
  httpHeadersTimeoutSeconds: number;
  /** REST: a client must send its whole request, body included, within this time (a trickling body is cut). */
  httpRequestTimeoutSeconds: number;
  /** A node validation task whose controller stops renewing its lease for this long is taken over by another. */
  taskLeaseSeconds: number;
  /** How often a controller claims tasks that no controller holds (unleased or lease run out). */
  taskPollSeconds: number;
  /** How often a controller re-reads the trust state (CA keys, KRL version) in case it missed a notification. */
  trustSyncSeconds: number;
  /** Browser origins allowed to call the REST API (CORS); empty: CORS off, no CORS headers. */
  corsOrigins: string[];
}

/** Every setting's environment variable and flag (also what --help lists). */
export const SETTINGS: Record<keyof ControllerConfig, SettingSpec> = {
  dataDir: { kind: 'string', env: 'VMWARDEN_DATA_DIR', flag: 'data-dir' },
  database: { kind: 'string', env: 'VMWARDEN_DATABASE_URL', flag: 'database' },
  keyEncryptionKeyFile: {
    kind: 'string',
    env: 'VMWARDEN_KEY_ENCRYPTION_KEY_FILE',
    flag: 'key-encryption-key-file',
  },
  listenHttp: { kind: 'string', env: 'VMWARDEN_LISTEN_HTTP', flag: 'listen-http' },
  listenHttps: { kind: 'string', env: 'VMWARDEN_LISTEN_HTTPS', flag: 'listen-https' },
  listenGrpc: { kind: 'string', env: 'VMWARDEN_LISTEN_GRPC', flag: 'listen-grpc' },
  serverNames: { kind: 'list', env: 'VMWARDEN_SERVER_NAMES' },
  sessionIdleSeconds: { kind: 'number', env: 'VMWARDEN_SESSION_IDLE_SECONDS', flag: 'session-idle-seconds' },
  loginMaxFailuresPerUsername: { kind: 'number', env: 'VMWARDEN_LOGIN_MAX_FAILURES_PER_USERNAME' },
  loginMaxFailuresPerAddress: { kind: 'number', env: 'VMWARDEN_LOGIN_MAX_FAILURES_PER_ADDRESS' },
  loginFailureWindowSeconds: { kind: 'number', env: 'VMWARDEN_LOGIN_FAILURE_WINDOW_SECONDS' },
  loginMaxFailuresPerUsernameAnyAddress: {
    kind: 'number',
    env: 'VMWARDEN_LOGIN_MAX_FAILURES_PER_USERNAME_ANY_ADDRESS',
  },
  loginAnyAddressWindowSeconds: { kind: 'number', env: 'VMWARDEN_LOGIN_ANY_ADDRESS_WINDOW_SECONDS' },
  clientCertDays: { kind: 'number', env: 'VMWARDEN_CLIENT_CERT_DAYS' },
  logLevel: { kind: 'string', env: 'VMWARDEN_LOG_LEVEL', flag: 'log-level' },
  logFormat: { kind: 'string', env: 'VMWARDEN_LOG_FORMAT', flag: 'log-format' },
  sshCaKeyType: { kind: 'string', env: 'VMWARDEN_SSH_CA_KEY_TYPE' },
  certDefaultTtlMinutes: { kind: 'number', env: 'VMWARDEN_CERT_DEFAULT_TTL_MINUTES' },
  certMaxTtlMinutes: { kind: 'number', env: 'VMWARDEN_CERT_MAX_TTL_MINUTES' },
  hostCertDays: { kind: 'number', env: 'VMWARDEN_HOST_CERT_DAYS' },
  certExtensions: { kind: 'list', env: 'VMWARDEN_CERT_EXTENSIONS' },
  certForceCommand: { kind: 'string', env: 'VMWARDEN_CERT_FORCE_COMMAND' },
  certSourceAddress: { kind: 'string', env: 'VMWARDEN_CERT_SOURCE_ADDRESS' },
  defaultLoginUser: { kind: 'string', env: 'VMWARDEN_DEFAULT_LOGIN_USER' },
  signatureDigest: { kind: 'string', env: 'VMWARDEN_SIGNATURE_DIGEST' },
  httpHeadersTimeoutSeconds: { kind: 'number', env: 'VMWARDEN_HTTP_HEADERS_TIMEOUT_SECONDS' },
  httpRequestTimeoutSeconds: { kind: 'number', env: 'VMWARDEN_HTTP_REQUEST_TIMEOUT_SECONDS' },
  taskLeaseSeconds: { kind: 'number', env: 'VMWARDEN_TASK_LEASE_SECONDS' },
  taskPollSeconds: { kind: 'number', env: 'VMWARDEN_TASK_POLL_SECONDS' },
  trustSyncSeconds: { kind: 'number', env: 'VMWARDEN_TRUST_SYNC_SECONDS' },
  corsOrigins: { kind: 'list', env: 'VMWARDEN_CORS_ORIGINS' },
};

export function defaultConfig(env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  // Under systemd (StateDirectory=vmwarden) the data lives in /var/lib; from a checkout, in ./var.
  const underSystemd = Boolean(env.INVOCATION_ID || env.STATE_DIRECTORY);
  return {
    dataDir: env.STATE_DIRECTORY ?? (underSystemd ? '/var/lib/vmwarden' : './var/controller'),
    database: '',
    keyEncryptionKeyFile: '',
    listenHttp: '127.0.0.1:9362',
    listenHttps: '127.0.0.1:9443',
    listenGrpc: '127.0.0.1:9363',
    serverNames: [],
    sessionIdleSeconds: 1800,
    loginMaxFailuresPerUsername: 10,
    loginMaxFailuresPerAddress: 50,
    loginFailureWindowSeconds: 300,
    loginMaxFailuresPerUsernameAnyAddress: 100,
    loginAnyAddressWindowSeconds: 3600,
    clientCertDays: 90,
    logLevel: 'info',
    logFormat: 'auto',
    sshCaKeyType: 'ed25519',
    certDefaultTtlMinutes: 5,
    certMaxTtlMinutes: 10,
    hostCertDays: 30,
    certExtensions: ['permit-pty'],
    certForceCommand: '',
    certSourceAddress: '',
    defaultLoginUser: 'vmwarden',
    signatureDigest: 'sha256',
    httpHeadersTimeoutSeconds: 30,
    httpRequestTimeoutSeconds: 30,
    taskLeaseSeconds: 15,
    taskPollSeconds: 5,
    trustSyncSeconds: 5,
    corsOrigins: [],
  };
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  const { config: result } = layerSettings({
    argv,
    env,
    defaults: defaultConfig(env),
    specs: SETTINGS,
    fileEnv: 'VMWARDEN_CONFIG',
  });
  if (result.database && !isPostgresUrl(result.database))
    throw new ConfigError('database must be a postgres:// URL (leave it empty for SQLite in the data dir)');
  for (const k of ['listenHttp', 'listenHttps', 'listenGrpc'] as const)
    if (result[k]) parseHostPort(result[k], k);
  if (!isLogFormat(result.logFormat))
    throw new ConfigError(`logFormat must be one of ${LOG_FORMATS.join(', ')}, got '${result.logFormat}'`);
  if (!['sha256', 'blake3'].includes(result.signatureDigest)) {
    throw new ConfigError(`signatureDigest must be sha256 or blake3, got '${result.signatureDigest}'`);
  }
  if (!['ed25519', 'ecdsa-p256', 'rsa'].includes(result.sshCaKeyType)) {
    throw new ConfigError(`sshCaKeyType must be ed25519, ecdsa-p256 or rsa, got '${result.sshCaKeyType}'`);
  }
  for (const k of [
    'loginMaxFailuresPerUsername',
    'loginMaxFailuresPerAddress',
    'loginFailureWindowSeconds',
    'loginMaxFailuresPerUsernameAnyAddress',
    'loginAnyAddressWindowSeconds',
  ] as const) {
    if (!Number.isInteger(result[k]) || result[k] < 1) {
      throw new ConfigError(`${k} must be a whole number of at least 1, got '${result[k]}'`);
    }
  }
  for (const k of ['httpHeadersTimeoutSeconds', 'httpRequestTimeoutSeconds'] as const)
    if (!(result[k] > 0 && result[k] <= 3600))
      throw new ConfigError(`${k} must be between 0 and 3600 seconds`);
  if (!(result.taskLeaseSeconds > 0 && result.taskLeaseSeconds <= 3600))
    throw new ConfigError('taskLeaseSeconds must be between 0 and 3600 seconds');
  if (!(result.trustSyncSeconds > 0 && result.trustSyncSeconds <= 3600))
    throw new ConfigError('trustSyncSeconds must be more than 0 and at most 3600');
  if (!(result.taskPollSeconds > 0 && result.taskPollSeconds <= result.taskLeaseSeconds))
    throw new ConfigError('taskPollSeconds must be more than 0 and at most taskLeaseSeconds');
  if (result.certDefaultTtlMinutes < 1 || result.certDefaultTtlMinutes > result.certMaxTtlMinutes) {
    throw new ConfigError('certDefaultTtlMinutes must be between 1 and certMaxTtlMinutes');
  }
  if (!(result.hostCertDays >= 1 && result.hostCertDays <= 366 && Number.isInteger(result.hostCertDays)))
    throw new ConfigError('hostCertDays must be a whole number of days between 1 and 366');
  for (const origin of result.corsOrigins)
    if (!/^https?:\/\/[^/\s]+\/?$/i.test(origin.trim()))
      throw new ConfigError(`corsOrigins: '${origin}' is not an origin (scheme://host[:port])`);
  return result;
}

export function keyEncryptionKeyPath(config: ControllerConfig): string {
  return resolve(config.keyEncryptionKeyFile || join(config.dataDir, 'cluster.key'));
}

export function serverNames(config: ControllerConfig): string[] {
  return ['localhost', '127.0.0.1', '::1', hostname(), ...config.serverNames];
}
