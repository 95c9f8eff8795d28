/**
 * OpenZiti's identity fields (identityCreate / identityUpdate / identityPatch of the edge
 * management API) and how they map onto vmwarden's roles:
 *   isAdmin: true                                           → role admin
 *   roleAttributes contains "vmwarden-agent", or type Router → role agent (never an admin)
 *   otherwise                                               → role user
 * The vmwarden `role` field is still accepted and wins over that mapping. Everything else OpenZiti
 * sends (type, roleAttributes, tags, appData, externalId, authPolicyId, hosting costs and
 * precedences) is kept as given and shown back; vmwarden acts on none of it.
 */
import { badRequest } from '../platform/errors.js';
import {
  IDENTITY_TYPES,
  type Identity,
  type IdentityAttributes,
  type IdentityType,
  type Role,
} from './model.js';

export { IDENTITY_TYPES, type IdentityAttributes, type IdentityType };

export const AGENT_ATTRIBUTE = 'vmwarden-agent';

/** What OpenZiti stores on an identity that vmwarden only keeps. */

export const defaultAttributes = (): IdentityAttributes => ({
  type: 'Default',
  roleAttributes: [],
  externalId: null,
  authPolicyId: 'default',
  tags: {},
  appData: {},
  defaultHostingCost: 0,
  defaultHostingPrecedence: 'default',
  serviceHostingCosts: {},
  serviceHostingPrecedences: {},
});

/** The stored JSON column (null on identities made before it existed). */
export function parseAttributes(text: unknown): IdentityAttributes {
  if (typeof text !== 'string' || text === '') return defaultAttributes();
  try {
    return { ...defaultAttributes(), ...(JSON.parse(text) as Partial<IdentityAttributes>) };
  } catch {
    return defaultAttributes();
  }
}

/** The body of POST, PUT or PATCH /identities (after schema validation). */
export interface ZitiIdentityBody {
  name?: string;
  type?: IdentityType;
  isAdmin?: boolean | null;
  roleAttributes?: string[] | null;
  enrollment?: { ott?: boolean; ottca?: string | null; updb?: string | null };
  externalId?: string | null;
  authPolicyId?: string | null;
  tags?: Record<string, unknown> | null;
  appData?: Record<string, unknown> | null;
  defaultHostingCost?: number | null;
  defaultHostingPrecedence?: string | null;
  serviceHostingCosts?: Record<string, number> | null;
  serviceHostingPrecedences?: Record<string, string> | null;
  // vmwarden's own
  role?: Role;
  password?: string;
  disabled?: boolean;
}

const invalid = (field: string, reason: string) =>
  badRequest('COULD_NOT_VALIDATE', `invalid body: ${reason}`, { field, reason });

/** The attributes a body sets (null means "reset"); absent fields are not in the result. */
function attributesOf(body: ZitiIdentityBody): Partial<IdentityAttributes> {
  const d = defaultAttributes();
  const out: Partial<IdentityAttributes> = {};
  const set = <K extends keyof IdentityAttributes>(
    key: K,
    value: IdentityAttributes[K] | null | undefined,
  ) => {
    if (value !== undefined) out[key] = value === null ? d[key] : value;
  };
  set('type', body.type);
  if (body.roleAttributes !== undefined)
    out.roleAttributes = [...new Set((body.roleAttributes ?? []).filter((a) => a !== AGENT_ATTRIBUTE))];
  if (body.externalId !== undefined) out.externalId = body.externalId;
  set('authPolicyId', body.authPolicyId);
  set('tags', body.tags);
  set('appData', body.appData);
  set('defaultHostingCost', body.defaultHostingCost);
  set('defaultHostingPrecedence', body.defaultHostingPrecedence);
  set('serviceHostingCosts', body.serviceHostingCosts);
  set('serviceHostingPrecedences', body.serviceHostingPrecedences);
  return out;
}

/**
 * The role a body asks for, given what the identity is now (undefined on a create): `role` if
 * given; otherwise from isAdmin, the agent attribute and type Router, each taken from the body
 * when present and from the identity otherwise. Undefined when the body says nothing about it.
 */
function roleOf(body: ZitiIdentityBody, current?: Identity): Role | undefined {
  const isAdmin = body.isAdmin ?? undefined;
  if (body.role !== undefined) {
    if (isAdmin !== undefined && isAdmin !== (body.role === 'admin'))
      throw invalid('isAdmin', `'isAdmin' ${isAdmin} contradicts role '${body.role}'`);
    return body.role;
  }
  if (isAdmin === undefined && body.roleAttributes === undefined && body.type === undefined) return undefined;
  const wasAgent = current?.role === 'agent';
  const agent =
    (body.roleAttributes !== undefined ? (body.roleAttributes ?? []).includes(AGENT_ATTRIBUTE) : wasAgent) ||
    (body.type ?? current?.attributes.type) === 'Router';
  const admin = isAdmin ?? current?.role === 'admin';
  if (agent && admin)
    throw invalid(
      'isAdmin',
      `an agent identity (type Router or roleAttribute '${AGENT_ATTRIBUTE}') cannot be an admin`,
    );
  return agent ? 'agent' : admin ? 'admin' : 'user';
}

export interface CreateInput {
  name: string;
  role: Role;
  password?: string;
  username?: string;
  attributes: IdentityAttributes;
}

/** POST /identities: OpenZiti's identityCreate (name, type, isAdmin required) or vmwarden's `role`. */
export function createInput(body: ZitiIdentityBody): CreateInput {
  if (body.role === undefined) {
    if (body.type === undefined) throw invalid('type', "'type' is required");
    if (typeof body.isAdmin !== 'boolean') throw invalid('isAdmin', "'isAdmin' is required");
  }
  const role = roleOf(body)!;
  return {
    name: body.name!,
    role,
    password: body.password,
    username: body.enrollment?.updb ?? undefined,
    attributes: { ...defaultAttributes(), ...attributesOf(body) },
  };
}

export interface UpdateInput {
  name?: string;
  role?: Role;
  disabled?: boolean;
  attributes: IdentityAttributes;
}

/**
 * PATCH (`full` false): what the body names changes. PUT (`full` true): OpenZiti's identityUpdate
 * (name, type, isAdmin required, or vmwarden's `role`); what it leaves out is reset.
 */
export function updateInput(body: ZitiIdentityBody, current: Identity, full: boolean): UpdateInput {
  if (full && body.role === undefined) {
    if (body.type === undefined) throw invalid('type', "'type' is required");
    if (typeof body.isAdmin !== 'boolean') throw invalid('isAdmin', "'isAdmin' is required");
  }
  const base = full ? defaultAttributes() : current.attributes;
  const roleBody = full ? { ...body, roleAttributes: body.roleAttributes ?? [] } : body;
  return {
    name: body.name ?? undefined,
    role: roleOf(roleBody, current),
    disabled: body.disabled,
    attributes: { ...base, ...attributesOf(body) },
  };
}
