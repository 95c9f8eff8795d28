export type CertificateStatus = 'ACTIVE' | 'EXPIRED' | 'REVOKED';
export type SessionStatus = 'ACTIVE' | 'ENDED' | 'REVOKED';

export interface SshCaRecord {
  id: number;
  keyType: string;
  publicKey: string;
  fingerprint: string;
  /** Where the private key was kept before keys were sealed in the database (pki/kek.ts); else null. */
  keyFile: string | null;
  /** active: signs new certificates; trusted: still published for guests; retired: gone. */
  status: 'active' | 'trusted' | 'retired';
  createdAt: string;
  retiredAt: string | null;
}

export interface CertificateRecord {
  id: string;
  serial: bigint;
  sandboxId: string;
  userId: string;
  vmName: string;
  keyId: string;
  principals: string[];
  publicKeyFingerprint: string;
  sshKeyId: string | null;
  caId: number;
  validAfter: string;
  validBefore: string;
  issuedAt: string;
  status: CertificateStatus;
  revokedAt: string | null;
  revokeReason: string | null;
}

export interface AccessSession {
  id: string;
  certificateId: string;
  sandboxId: string;
  userId: string;
  vmName: string;
  vmIpAddress: string;
  sourceIp: string;
  startedAt: string;
  endedAt: string | null;
  status: SessionStatus;
  endReason: string | null;
}

export interface CertificateQuery {
  sandboxId?: string;
  userId?: string;
  status?: CertificateStatus;
  activeOnly?: boolean;
  limit: number;
  offset: number;
}

export interface SessionQuery {
  sandboxId?: string;
  certificateId?: string;
  userId?: string;
  activeOnly?: boolean;
  limit: number;
  offset: number;
}

/** What an agent last reported about trust inside one guest. */
export interface GuestTrustStatus {
  serverId: string;
  nodeId: number;
  state: string;
  caFingerprints: string[];
  krlVersion: number;
  lastSuccess: string | null;
  lastError: string | null;
  loginUser: string;
  transport: string;
  reportedAt: string;
}
