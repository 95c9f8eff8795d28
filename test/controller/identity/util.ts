/**
 * Shared helpers for the identity & API sessions tests: client keys/CSRs made with the real openssl
 * CLI, certificates issued through the admin API, error-envelope checks.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { Reply, TestController } from '../../helpers/controller.js';
import { assertContract, ZITI } from '../../helpers/contract.js';

function inTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-openssl-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface KeyAndCsr {
  key: string;
  csr: string;
}

/** A new P-256 key and a CSR for it, exactly as an operator would make one with openssl. */
export function newCsr(subject = '/CN=vmwarden-test-client'): KeyAndCsr {
  return inTemp((dir) => {
    const key = join(dir, 'client.key');
    const csr = join(dir, 'client.csr');
    execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        csr,
        '-subj',
        subject,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return { key: readFileSync(key, 'utf8'), csr: readFileSync(csr, 'utf8') };
  });
}

/** A CSR for an existing key (no key roll). */
export function csrForKey(keyPem: string, subject: string): string {
  return inTemp((dir) => {
    const key = join(dir, 'client.key');
    execFileSync('sh', ['-c', 'umask 077 && cat > "$1"', 'sh', key], { input: keyPem });
    return execFileSync('openssl', ['req', '-new', '-key', key, '-subj', subject], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString();
  });
}

/** A self-signed client certificate: valid X.509, but not from the controller's CA. */
export function selfSignedCert(subject = '/CN=intruder'): { key: string; cert: string } {
  return inTemp((dir) => {
    const key = join(dir, 'k.pem');
    const cert = join(dir, 'c.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-keyout',
        key,
        '-out',
        cert,
        '-subj',
        subject,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  });
}

/** `openssl x509 -text` of a PEM certificate. */
export function certText(pem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem }).toString();
}

export interface ClientCert {
  key: string;
  cert: string;
  authenticatorId: string;
}

/** Issues a client certificate for an identity through POST /identities/{id}/certificate. */
export async function issueCert(
  c: TestController,
  identityId: string,
  subject = '/CN=vmwarden-test-client',
  keyAndCsr: KeyAndCsr = newCsr(subject),
): Promise<ClientCert> {
  const r = await c.call('POST', `/identities/${identityId}/certificate`, {
    token: await c.adminToken(),
    body: { csr: keyAndCsr.csr },
  });
  assert.is(r.status, 201, r.text);
  return { key: keyAndCsr.key, cert: r.body.data.certificate, authenticatorId: r.body.data.authenticatorId };
}

/** Logs in with a client certificate over HTTPS. */
export function certLogin(c: TestController, cert?: { key: string; cert: string }) {
  return c.callTls('POST', '/authenticate?method=cert', {
    cert: cert?.cert,
    key: cert?.key,
    body: {},
  });
}

/** The reply is a 4xx/5xx in the OpenZiti error envelope with the given status and code. */
export function assertError(r: Reply, status: number, code?: string): void {
  assert.is(r.status, status, `expected ${status}${code ? ` ${code}` : ''}, got ${r.status}: ${r.text}`);
  assert.ok(
    (r.headers['content-type'] ?? '').includes('application/json'),
    `content-type ${r.headers['content-type']}`,
  );
  assert.type(r.body, 'object', r.text);
  assert.type(r.body.meta, 'object');
  assert.type(r.body.error, 'object');
  assert.type(r.body.error.code, 'string');
  assert.type(r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 0);
  assert.type(r.body.error.requestId, 'string');
  assert.ok(r.body.error.requestId.length > 0);
  if (code) assert.is(r.body.error.code, code, r.text);
  assertContract(ZITI, 'apiErrorEnvelope', r.body);
}

export const randomUuid = () => '0b5c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3';
