import type { IdentityAttributes } from './ziti-identity.js';

export type Role = 'admin' | 'user' | 'agent';
export const ROLES: Role[] = ['admin', 'user', 'agent'];

export interface Identity {
  id: string;
  name: string;
  role: Role;
  isDefaultAdmin: boolean;
  disabled: boolean;
  /** OpenZiti's fields that vmwarden keeps but does not act on (type, roleAttributes, tags…). */
  attributes: IdentityAttributes;
  createdAt: string;
  updatedAt: string;
}

export interface Authenticator {
  id: string;
  identityId: string;
  method: 'updb' | 'cert';
  username: string | null;
  passwordHash: string | null;
  certPem: string | null;
  fingerprint: string | null;
  pendingCertPem: string | null;
  pendingFingerprint: string | null;
  extendRequestedAt: string | null;
  lastExtendRolledKeys: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface ApiSession {
  id: string;
  tokenHash: string;
  identityId: string;
  authenticatorId: string;
  ipAddress: string;
  createdAt: string;
  updatedAt: string;
  lastActivityAt: string;
}

/** Who is calling, as every route sees it after authentication. */
export interface Principal {
  identity: Identity;
  session: ApiSession;
  token: string;
}

export interface Page<T> {
  rows: T[];
  total: number;
  limit: number;
  offset: number;
}
