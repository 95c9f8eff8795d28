import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
const keys = {
    dataDir: { kind: 'string', env: 'VMWARDEN_DATA_DIR', flag: 'data-dir' },
    listenHttp: { kind: 'string', env: 'VMWARDEN_LISTEN_HTTP', flag: 'listen-http' },
    listenHttps: { kind: 'string', env: 'VMWARDEN_LISTEN_HTTPS', flag: 'listen-https' },
    listenGrpc: { kind: 'string', env: 'VMWARDEN_LISTEN_GRPC', flag: 'listen-grpc' },
    serverNames: { kind: 'list', env: 'VMWARDEN_SERVER_NAMES' },
    sessionIdleSeconds: { kind: 'number', env: 'VMWARDEN_SESSION_IDLE_SECONDS', flag: 'session-idle-seconds' },
    loginMaxFailuresPerUsername: { kind: 'number', env: 'VMWARDEN_LOGIN_MAX_FAILURES_PER_USERNAME' },
    loginMaxFailuresPerAddress: { kind: 'number', env: 'VMWARDEN_LOGIN_MAX_FAILURES_PER_ADDRESS' },
    loginFailureWindowSeconds: { kind: 'number', env: 'VMWARDEN_LOGIN_FAILURE_WINDOW_SECONDS' },
    clientCertDays: { kind: 'number', env: 'VMWARDEN_CLIENT_CERT_DAYS' },
    logLevel: { kind: 'string', env: 'VMWARDEN_LOG_LEVEL', flag: 'log-level' },
    sshCaKeyType: { kind: 'string', env: 'VMWARDEN_SSH_CA_KEY_TYPE' },
    certDefaultTtlMinutes: { kind: 'number', env: 'VMWARDEN_CERT_DEFAULT_TTL_MINUTES' },
    certMaxTtlMinutes: { kind: 'number', env: 'VMWARDEN_CERT_MAX_TTL_MINUTES' },
    certExtensions: { kind: 'list', env: 'VMWARDEN_CERT_EXTENSIONS' },
    certForceCommand: { kind: 'string', env: 'VMWARDEN_CERT_FORCE_COMMAND' },
    certSourceAddress: { kind: 'string', env: 'VMWARDEN_CERT_SOURCE_ADDRESS' },
    defaultLoginUser: { kind: 'string', env: 'VMWARDEN_DEFAULT_LOGIN_USER' },
};
export function defaultConfig(env = process.env) {
    // Under systemd (StateDirectory=vmwarden) the data lives in /var/lib; from a checkout, in ./var.
    const underSystemd = Boolean(env.INVOCATION_ID || env.STATE_DIRECTORY);
    return {
        dataDir: env.STATE_DIRECTORY ?? (underSystemd ? '/var/lib/vmwarden' : './var/controller'),
        listenHttp: '127.0.0.1:9362',
        listenHttps: '127.0.0.1:9443',
        listenGrpc: '127.0.0.1:9363',
        serverNames: [],
        sessionIdleSeconds: 1800,
        loginMaxFailuresPerUsername: 10,
        loginMaxFailuresPerAddress: 50,
        loginFailureWindowSeconds: 300,
        clientCertDays: 90,
        logLevel: 'info',
        sshCaKeyType: 'ed25519',
        certDefaultTtlMinutes: 5,
        certMaxTtlMinutes: 10,
        certExtensions: ['permit-pty'],
        certForceCommand: '',
        certSourceAddress: '',
        defaultLoginUser: 'vmwarden',
    };
}
export class ConfigError extends Error {
}
function coerce(key, kind, value, source) {
    if (kind === 'number') {
        const n = typeof value === 'number' ? value : Number(value);
        if (!Number.isFinite(n) || n < 0)
            throw new ConfigError(`${source}: ${key} must be a non-negative number, got '${value}'`);
        return n;
    }
    if (kind === 'list') {
        if (Array.isArray(value))
            return value.map(String);
        return String(value)
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
    }
    if (typeof value !== 'string')
        throw new ConfigError(`${source}: ${key} must be a string`);
    return value;
}
export function loadConfig(argv, env = process.env) {
    const options = { config: { type: 'string' } };
    for (const spec of Object.values(keys))
        if (spec.flag)
            options[spec.flag] = { type: 'string' };
    let flags;
    try {
        flags = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
    }
    catch (err) {
        throw new ConfigError(err.message);
    }
    const config = defaultConfig(env);
    const file = flags.config ?? env.VMWARDEN_CONFIG;
    if (file) {
        let parsed;
        try {
            const text = readFileSync(file, 'utf8');
            parsed = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
        }
        catch (err) {
            throw new ConfigError(`config file ${file}: ${err.message}`);
        }
        if (parsed && typeof parsed === 'object') {
            for (const [k, v] of Object.entries(parsed)) {
                const spec = keys[k];
                if (!spec)
                    throw new ConfigError(`config file ${file}: unknown setting '${k}'; known: ${Object.keys(keys).join(', ')}`);
                config[k] = coerce(k, spec.kind, v, `config file ${file}`);
            }
        }
    }
    for (const [k, spec] of Object.entries(keys)) {
        if (env[spec.env] !== undefined)
            config[k] = coerce(k, spec.kind, env[spec.env], spec.env);
        if (spec.flag && flags[spec.flag] !== undefined)
            config[k] = coerce(k, spec.kind, flags[spec.flag], `--${spec.flag}`);
    }
    const result = config;
    for (const k of ['listenHttp', 'listenHttps', 'listenGrpc'])
        if (result[k])
            parseHostPort(result[k], k);
    if (!['ed25519', 'ecdsa-p256', 'rsa'].includes(result.sshCaKeyType)) {
        throw new ConfigError(`sshCaKeyType must be ed25519, ecdsa-p256 or rsa, got '${result.sshCaKeyType}'`);
    }
    if (result.certDefaultTtlMinutes < 1 || result.certDefaultTtlMinutes > result.certMaxTtlMinutes) {
        throw new ConfigError('certDefaultTtlMinutes must be between 1 and certMaxTtlMinutes');
    }
    return result;
}
/** "127.0.0.1:9362", "[::1]:0", ":9362" (all interfaces). Port 0 picks a free port. */
export function parseHostPort(value, what = 'address') {
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
    const port = m ? Number(m[3]) : NaN;
    if (!m || port > 65535)
        throw new ConfigError(`${what}: expected HOST:PORT, got '${value}'`);
    return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}
export function serverNames(config) {
    return ['localhost', '127.0.0.1', '::1', hostname(), ...config.serverNames];
}
//# sourceMappingURL=config.js.map