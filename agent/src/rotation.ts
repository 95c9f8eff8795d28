import { request } from 'node:https';
import { X509Certificate, createHash } from 'node:crypto';
import { newKeyAndCsr } from '../../lib/pki/x509.js';
import { loadCredentials, saveCredentials, type AgentCredentials } from './credentials.js';

/** Rotate when less than a third of the certificate's lifetime is left. */
export function needsRotation(certPem: string, now = new Date()): boolean {
  const cert = new X509Certificate(certPem);
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return to - now.getTime() < (to - from) / 3;
}

interface Reply {
  status: number;
  body: any;
}

function call(
  creds: { cert: string; key: string; ca: string },
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<Reply> {
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      base + path,
      {
        method,
        ca: creds.ca,
        cert: creds.cert,
        key: creds.key,
        agent: false,
        headers: {
          ...(opts.token ? { 'zt-session': opts.token } : {}),
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        timeout: 15_000,
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Rotates the agent's certificate through the identity API, like any cert identity: log in with the
 * current certificate, `extend` with a CSR for a new key (over mTLS with the current certificate),
 * then `extend-verify` the new certificate. Only after verify is the new key saved and used.
 */
export async function rotateCertificate(dataDir: string): Promise<AgentCredentials> {
  const creds = loadCredentials(dataDir);
  const base = creds.enrollment.restUrl;
  if (!base) throw new Error('the controller did not tell its REST URL at enrollment; cannot rotate');
  const login = await call(creds, base, 'POST', '/authenticate?method=cert');
  if (login.status !== 200)
    throw new Error(`certificate login failed: ${login.status} ${JSON.stringify(login.body)}`);
  const token = login.body.data.token as string;
  try {
    const fingerprint = createHash('sha256').update(new X509Certificate(creds.cert).raw).digest('hex');
    const list = await call(
      creds,
      base,
      'GET',
      `/current-identity/authenticators?filter=${encodeURIComponent(`fingerprint = "${fingerprint}"`)}`,
      { token },
    );
    const id = list.body.data?.[0]?.id as string | undefined;
    if (!id) throw new Error('no authenticator matches the current certificate');
    const { keyPem, csrPem } = await newKeyAndCsr(`CN=vmwarden agent ${creds.enrollment.nodeName}`);
    const extended = await call(creds, base, 'POST', `/current-identity/authenticators/${id}/extend`, {
      token,
      body: { clientCertCsr: csrPem },
    });
    if (extended.status !== 200)
      throw new Error(`extend failed: ${extended.status} ${JSON.stringify(extended.body)}`);
    const cert = extended.body.data.clientCert as string;
    const verified = await call(creds, base, 'POST', `/current-identity/authenticators/${id}/extend-verify`, {
      token,
      body: { clientCert: cert },
    });
    if (verified.status !== 200)
      throw new Error(`extend-verify failed: ${verified.status} ${JSON.stringify(verified.body)}`);
    const next = { ...creds, key: keyPem, cert };
    saveCredentials(dataDir, next);
    return next;
  } finally {
    await call(creds, base, 'DELETE', '/current-api-session', { token }).catch(() => undefined);
  }
}
