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

/** OpenZiti's identity types (an agent is always shown as Router). */
export const IDENTITY_TYPES = ['User', 'Device', 'Service', 'Router', 'Default'] as const;
export type IdentityType = (typeof IDENTITY_TYPES)[number];

/** What OpenZiti's identity fields hold for an identity (stored as JSON; only the role acts). */
export interface IdentityAttributes {
  /** As the client set it; an agent is shown as Router whatever was set. */
  type: IdentityType;
  /** As the client set them, without AGENT_ATTRIBUTE (which follows the role). */
  roleAttributes: string[];
  externalId: string | null;
  authPolicyId: string;
  tags: Record<string, unknown>;
  appData: Record<string, unknown>;
  defaultHostingCost: number;
  defaultHostingPrecedence: string;
  serviceHostingCosts: Record<string, number>;
  serviceHostingPrecedences: Record<string, string>;
}
