/**
 * Validation of what callers send over gRPC, with the same bounds REST input gets (UUIDs, name
 * lengths, IP syntax, list sizes). Every Controller handler passes its request through one of the
 * `valid…` functions below before acting; they return a normalised copy (UUIDs lower-cased) or throw
 * INVALID_ARGUMENT. Messages quote at most a short prefix of an offending value.
 */
import * as grpc from '@grpc/grpc-js';
import { isIP } from 'node:net';
import { grpcError } from '../../../proto/grpc-tls.js';
import type {
  EnrollRequestMsg,
  EventMsg,
  GuestTrustStatusMsg,
  InstanceMsg,
  InventoryReportMsg,
  SessionReportMsg,
  SignHostKeysRequestMsg,
} from '../../../proto/messages.js';

export const LIMITS = {
  /** Instances in one inventory report, guests in one trust report. */
  instances: 10_000,
  addresses: 64,
  name: 255,
  short: 64,
  text: 16_384,
  pem: 16_384,
  differences: 1000,
  fingerprints: 64,
  pageSize: 10_000,
  hostKeys: 16,
} as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** A value as it may appear in an error message: JSON-quoted, at most 40 characters of it. */
export function quote(value: unknown): string {
  const s = typeof value === 'string' ? value : String(value);
  return s.length > 40 ? `${JSON.stringify(s.slice(0, 40))}… (${s.length} characters)` : JSON.stringify(s);
}

const CONTROL = /[\u0000-\u001f\u007f]/;
const MULTILINE_CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

const invalid = (message: string) => grpcError(grpc.status.INVALID_ARGUMENT, message);

/** A canonical UUID (any case), returned lower-cased. */
export function uuid(field: string, value: unknown): string {
  if (typeof value !== 'string' || !UUID.test(value))
    throw invalid(`${field} must be a canonical UUID, got ${quote(value ?? '')}`);
  return value.toLowerCase();
}

/**
 * A string of at most `max` characters without control characters (tabs and line breaks allowed
 * only when `multiline`); '' unless `required`.
 */
export function text(
  field: string,
  value: unknown,
  max: number,
  required = false,
  multiline = false,
): string {
  const s = value ?? '';
  if (typeof s !== 'string') throw invalid(`${field} must be a string`);
  if (required && !s) throw invalid(`${field} is required`);
  if (s.length > max) throw invalid(`${field} is longer than ${max} characters (${s.length})`);
  if ((multiline ? MULTILINE_CONTROL : CONTROL).test(s))
    throw invalid(`${field} contains control characters: ${quote(s)}`);
  return s;
}

/** An IPv4 or IPv6 address (an IPv6 zone such as %eth0 allowed). */
export function ip(field: string, value: unknown, allowEmpty = false): string {
  const s = text(field, value, LIMITS.short);
  if (allowEmpty && s === '') return s;
  if (!isIP(s.replace(/%[\w.-]{1,32}$/, '')))
    throw invalid(`${field} must be an IP address, got ${quote(s)}`);
  return s;
}

/** host:port (host an IP, [IPv6] or a DNS name; port 0-65535), or ''. */
export function hostPort(field: string, value: unknown): string {
  const s = text(field, value, LIMITS.name);
  if (!s) return s;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const host = m?.[1] ?? m?.[2] ?? '';
  const ok =
    m && Number(m[3]) <= 65535 && (m[1] ? isIP(host) === 6 : isIP(host) === 4 || HOST_NAME.test(host));
  if (!ok) throw invalid(`${field} must be host:port, got ${quote(s)}`);
  return s;
}

export function list<T>(field: string, value: unknown, max: number): T[] {
  const a = value ?? [];
  if (!Array.isArray(a)) throw invalid(`${field} must be a list`);
  if (a.length > max) throw invalid(`${field} has ${a.length} entries, at most ${max} are accepted`);
  return a as T[];
}

function uniqueIds<T extends { serverId: string }>(field: string, entries: T[]): T[] {
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.serverId)) throw invalid(`${field} names server_id ${e.serverId} twice`);
    seen.add(e.serverId);
  }
  return entries;
}

const instance = (i: InstanceMsg, n: number): InstanceMsg => ({
  serverId: uuid(`instances[${n}].server_id`, i.serverId),
  name: text(`instances[${n}].name`, i.name, LIMITS.name, true),
  state: text(`instances[${n}].state`, i.state, LIMITS.short),
  ipAddresses: list<string>(`instances[${n}].ip_addresses`, i.ipAddresses, LIMITS.addresses).map((a, k) =>
    ip(`instances[${n}].ip_addresses[${k}]`, a),
  ),
  signed: Boolean(i.signed),
  isValid: text(`instances[${n}].is_valid`, i.isValid, LIMITS.short),
});

export function validInventoryReport(r: InventoryReportMsg): InventoryReportMsg {
  return {
    instances: uniqueIds(
      'instances',
      list<InstanceMsg>('instances', r.instances, LIMITS.instances).map(instance),
    ),
    agentAddress: hostPort('agent_address', r.agentAddress),
    validationActive: Boolean(r.validationActive),
    libvirtUri: text('libvirt_uri', r.libvirtUri, LIMITS.text),
  };
}

export function validTrustReport(r: { guests: GuestTrustStatusMsg[] }): GuestTrustStatusMsg[] {
  const guests = list<GuestTrustStatusMsg>('guests', r.guests, LIMITS.instances).map((g, n) => ({
    serverId: uuid(`guests[${n}].server_id`, g.serverId),
    state: text(`guests[${n}].state`, g.state, LIMITS.short),
    caFingerprints: list<string>(`guests[${n}].ca_fingerprints`, g.caFingerprints, LIMITS.fingerprints).map(
      (f, k) => text(`guests[${n}].ca_fingerprints[${k}]`, f, LIMITS.name),
    ),
    krlVersion: text(`guests[${n}].krl_version`, String(g.krlVersion ?? '0'), 20),
    lastSuccess: text(`guests[${n}].last_success`, g.lastSuccess, LIMITS.short),
    lastError: text(`guests[${n}].last_error`, g.lastError, LIMITS.text, false, true),
    loginUser: text(`guests[${n}].login_user`, g.loginUser, LIMITS.short),
    transport: text(`guests[${n}].transport`, g.transport, LIMITS.short),
  }));
  return uniqueIds('guests', guests);
}

/** Host keys are OpenSSH public key lines; the host CA checks each (type, size) before signing. */
export function validSignHostKeys(r: SignHostKeysRequestMsg): SignHostKeysRequestMsg {
  return {
    instanceUuid: uuid('instance_uuid', r.instanceUuid),
    publicKeys: list<string>('public_keys', r.publicKeys, LIMITS.hostKeys).map((k, n) =>
      text(`public_keys[${n}]`, typeof k === 'string' ? k.trim() : k, LIMITS.pem, true),
    ),
  };
}

export function validSessionReport(r: SessionReportMsg): SessionReportMsg {
  const event = text('event', r.event, LIMITS.short);
  if (event !== 'start' && event !== 'end')
    throw invalid(`unknown session event ${quote(event).slice(1, -1)}: start or end`);
  return {
    serverId: uuid('server_id', r.serverId),
    event,
    certificateId: text('certificate_id', r.certificateId, LIMITS.name, event === 'start'),
    serial: text('serial', r.serial, LIMITS.short),
    sourceIp: ip('source_ip', r.sourceIp, true),
    sessionId: text('session_id', r.sessionId, LIMITS.short, event === 'end'),
    reason: text('reason', r.reason, LIMITS.name),
  };
}

export function validEvent(e: EventMsg): EventMsg {
  const v = e.verdict;
  return {
    time: text('time', e.time, LIMITS.short),
    kind: text('kind', e.kind, LIMITS.short),
    // Validation on/off events concern the node, not an instance.
    serverId: e.serverId ? uuid('server_id', e.serverId) : '',
    instanceName: text('instance_name', e.instanceName, LIMITS.name),
    detail: text('detail', e.detail, LIMITS.text, false, true),
    state: text('state', e.state, LIMITS.short),
    action: text('action', e.action, LIMITS.short),
    verdict: v
      ? {
          serverId: v.serverId ? uuid('verdict.server_id', v.serverId) : '',
          isValid: text('verdict.is_valid', v.isValid, LIMITS.short),
          checkedAt: text('verdict.checked_at', v.checkedAt, LIMITS.short),
          differences: list<NonNullable<typeof v.differences>[number]>(
            'verdict.differences',
            v.differences,
            LIMITS.differences,
          ).map((d, n) => ({
            component: text(`differences[${n}].component`, d.component, LIMITS.name),
            role: text(`differences[${n}].role`, d.role, LIMITS.short),
            target: text(`differences[${n}].target`, d.target, LIMITS.name),
            path: text(`differences[${n}].path`, d.path, LIMITS.text),
            expected: text(`differences[${n}].expected`, d.expected, LIMITS.name),
            actual: text(`differences[${n}].actual`, d.actual, LIMITS.name),
            chunks: list<number>(`differences[${n}].chunks`, d.chunks, 100_000),
            reason: text(`differences[${n}].reason`, d.reason, LIMITS.text, false, true),
          })),
          uninspected: list<string>('verdict.uninspected', v.uninspected, LIMITS.differences).map((u, n) =>
            text(`verdict.uninspected[${n}]`, u, LIMITS.text, false, true),
          ),
        }
      : null,
  };
}

export function validEnroll(r: EnrollRequestMsg): EnrollRequestMsg {
  return {
    token: text('token', r.token, 512),
    csrPem: text('csr_pem', r.csrPem, LIMITS.pem, false, true),
    nodePublicKeyPem: text('node_public_key_pem', r.nodePublicKeyPem, LIMITS.pem, false, true),
    agentAddress: hostPort('agent_address', r.agentAddress),
    hostname: text('hostname', r.hostname, LIMITS.name),
  };
}

export function validFleetList(r: { nodeId: number; limit: number; offset: number }) {
  const n = (field: string, v: unknown, max: number) => {
    const x = Number(v ?? 0);
    if (!Number.isInteger(x) || x < 0 || x > max) throw invalid(`${field} must be an integer 0-${max}`);
    return x;
  };
  return {
    nodeId: n('node_id', r.nodeId, 2 ** 31),
    limit: n('limit', r.limit, LIMITS.pageSize),
    offset: n('offset', r.offset, 2 ** 31),
  };
}
