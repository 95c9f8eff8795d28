/**
 * COmanage Registry SshKey API wire format (seeds/ssh-key-api.md): request parsing, response
 * mappers and the ErrorResponse. Ids are integers rendered as strings, dates "YYYY-MM-DD hh:mm:ss"
 * UTC, as COmanage does. `Fingerprint` is our addition to the SshKey object.
 */
import { ApiError } from '../platform/errors.js';
import { parsePositiveId } from '../platform/ids.js';
import { KeyMaterialError, MAX_SKEY_CHARS, parseKeyMaterial, type ParsedKey } from './key-material.js';
import { InvalidFieldsError, invalidField } from './errors.js';
import type { SshKeyRequest } from './service.js';
import type { CoAuthenticator, SshKey, SshKeyAuthenticator } from './store.js';
import type { AuthenticatorsView } from './service.js';

export const VERSION = '1.0';
export const MAX_COMMENT_CHARS = 256;
/** Bodies of this group are small: one key of at most 16 KiB plus its envelope. */
export const BODY_LIMIT = 64 * 1024;

export const jsonOnly = (format: string) =>
  new ApiError(
    415,
    'UNSUPPORTED_FORMAT',
    format
      ? `Format '${format.slice(0, 16)}' is not supported: only JSON is supported (use the .json suffix)`
      : 'A format suffix is required: only JSON is supported (use the .json suffix)',
  );

/** HTTP reason phrases COmanage uses for its errors. */
const STATUS_TEXT: Record<string, string> = {
  REQUEST_NOT_PROVIDED: 'Bad Request',
  UNAUTHORIZED: 'Unauthorized',
  INVALID_FIELDS: 'Invalid Fields',
  SSHKEY_UNKNOWN: 'SshKey Unknown',
  COPERSON_UNKNOWN: 'CO Person Unknown',
  AUTHENTICATOR_UNKNOWN: 'SshKeyAuthenticator Unknown',
};

export function errorResponse(err: ApiError, id: string | undefined) {
  let invalid: Record<string, string[]> | undefined;
  if (err instanceof InvalidFieldsError) invalid = err.fields;
  else if (err.status === 400)
    invalid = { [err.cause?.field || 'Request']: [err.cause?.reason ?? err.message] };
  return {
    body: {
      ResponseType: 'ErrorResponse',
      Version: VERSION,
      ...(id !== undefined ? { Id: id } : {}),
      Error: err.message,
      ...(invalid ? { InvalidFields: invalid } : {}),
    },
    statusText: STATUS_TEXT[err.code],
  };
}

/** "2026-11-22 15:04:22" from an ISO timestamp. */
export const comanageDate = (iso: string) => iso.slice(0, 19).replace('T', ' ');

const person = (identityId: string) => ({ Type: 'CO', Id: identityId });

/** `SshKeyAuthenticatorId` is the CO's authenticator, whichever per-person row holds the key's lock. */
export function sshKeyView(k: SshKey, coAuthenticatorId: number) {
  return {
    Version: VERSION,
    Id: String(k.id),
    Person: person(k.identityId),
    Comment: k.comment,
    Type: k.type,
    Skey: k.skey,
    Created: comanageDate(k.createdAt),
    Modified: comanageDate(k.modifiedAt),
    Revision: String(k.revision),
    Deleted: k.deleted,
    SshKeyAuthenticatorId: String(coAuthenticatorId),
    Fingerprint: k.fingerprint,
  };
}

export const sshKeysResponse = (keys: SshKey[], coAuthenticatorId: number) => ({
  ResponseType: 'SshKeys',
  Version: VERSION,
  SshKeys: keys.map((k) => sshKeyView(k, coAuthenticatorId)),
});

export const newObjectResponse = (id: number, objectType = 'SshKey') => ({
  ResponseType: 'NewObject',
  Version: VERSION,
  ObjectType: objectType,
  Id: String(id),
});

export const coAuthenticatorView = (a: CoAuthenticator) => ({
  Version: VERSION,
  Id: String(a.id),
  Description: a.description,
  Status: 'Active',
  Created: comanageDate(a.createdAt),
  Modified: comanageDate(a.createdAt),
});

/** One person's lock on the CO's authenticator (COmanage's AuthenticatorStatus); Id is the older per-person id. */
export function authenticatorStatusView(a: SshKeyAuthenticator, coAuthenticatorId: number) {
  return {
    Version: VERSION,
    Id: String(a.id),
    SshKeyAuthenticatorId: String(coAuthenticatorId),
    Person: person(a.identityId),
    Locked: a.locked,
    Created: comanageDate(a.createdAt),
    Modified: comanageDate(a.updatedAt),
  };
}

export const authenticatorsResponse = (v: AuthenticatorsView) => ({
  ResponseType: 'SshKeyAuthenticators',
  Version: VERSION,
  SshKeyAuthenticators: [coAuthenticatorView(v.co)],
  AuthenticatorStatuses: v.statuses.map((a) => authenticatorStatusView(a, v.co.id)),
});

/** Response fields a client may echo back from a GET; ignored (Id is checked against the URL). */
const READ_ONLY = new Set([
  'Id',
  'Created',
  'Modified',
  'Revision',
  'Deleted',
  'Fingerprint',
  'ActorIdentifier',
]);
const ITEM_FIELDS = new Set([
  'Version',
  'Person',
  'Comment',
  'Type',
  'Skey',
  'SshKeyAuthenticatorId',
  ...READ_ONLY,
]);

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a COmanage SshKey request body and parses its key. Every problem found is reported at
 * once in InvalidFields.
 */
export function parseSshKeyRequest(body: unknown): SshKeyRequest {
  if (body === undefined || body === null || body === '')
    throw new ApiError(400, 'REQUEST_NOT_PROVIDED', 'SSH Key Request not provided in POST body', {
      field: 'SshKeys',
      reason: 'SSH Key Request not provided in POST body',
    });
  if (!isObject(body)) throw invalidField('SshKeys', 'the body must be a JSON object (an SshKeys request)');
  const problems: Record<string, string[]> = {};
  const add = (field: string, message: string) => (problems[field] ??= []).push(message);
  const fail = () => new InvalidFieldsError(problems);

  for (const k of Object.keys(body))
    if (!['RequestType', 'Version', 'SshKeys'].includes(k)) add(k.slice(0, 64), 'Unknown field');
  if (body.RequestType !== 'SshKeys') add('RequestType', 'RequestType must be "SshKeys"');
  if (body.Version !== VERSION) add('Version', 'Unknown version');
  const list = body.SshKeys;
  if (!Array.isArray(list) || list.length !== 1) {
    add('SshKeys', 'SshKeys must be an array of exactly one SshKey');
    throw fail();
  }
  const item = list[0];
  if (!isObject(item)) {
    add('SshKeys', 'SshKeys[0] must be an SshKey object');
    throw fail();
  }
  for (const k of Object.keys(item)) if (!ITEM_FIELDS.has(k)) add(k.slice(0, 64), 'Unknown field');
  if (item.Version !== VERSION) add('Version', 'Unknown version');

  let personId = '';
  const p = item.Person;
  if (!isObject(p) || typeof p.Id !== 'string' || !p.Id.trim())
    add('Person', 'Person must be {"Type":"CO","Id":"<CO Person id>"}');
  else if (p.Type !== 'CO') add('Person', 'Person Type must be "CO"');
  else if (Object.keys(p).some((k) => k !== 'Type' && k !== 'Id')) add('Person', 'Person has unknown fields');
  else personId = p.Id.trim();

  let authenticatorId = 0;
  const a = item.SshKeyAuthenticatorId;
  if (a === undefined || a === null || a === '')
    add('SshKeyAuthenticatorId', 'SshKeyAuthenticatorId is required');
  else if ((typeof a !== 'string' && typeof a !== 'number') || !/^[1-9]\d{0,15}$/.test(String(a)))
    add('SshKeyAuthenticatorId', 'SshKeyAuthenticatorId must be a positive integer (as a string)');
  else authenticatorId = Number(a);

  if (item.Type !== undefined && typeof item.Type !== 'string') add('Type', 'Type must be a string');
  let comment: string | undefined;
  if (item.Comment !== undefined && item.Comment !== null) {
    if (typeof item.Comment !== 'string') add('Comment', 'Comment must be a string');
    else comment = item.Comment;
  }

  let key: ParsedKey | undefined;
  if (typeof item.Skey !== 'string' || !item.Skey.trim()) add('Skey', 'Skey is required (the public key)');
  else if (item.Skey.length > MAX_SKEY_CHARS) add('Skey', `Skey is longer than ${MAX_SKEY_CHARS} characters`);
  else if (typeof item.Type === 'string' || item.Type === undefined) {
    try {
      key = parseKeyMaterial(item.Skey, item.Type as string | undefined);
      if (item.Type === undefined && !/\s/.test(item.Skey.trim()))
        add('Type', 'Type is required when Skey is only the base64 body of the key');
    } catch (err) {
      if (!(err instanceof KeyMaterialError)) throw err;
      add(err.field, err.message);
    }
  }

  // A Comment in the request wins over the one carried by an OpenSSH line or RFC 4716 block.
  const finalComment = (comment ?? key?.comment ?? '').trim();
  if (finalComment.length > MAX_COMMENT_CHARS)
    add('Comment', `Comment is longer than ${MAX_COMMENT_CHARS} characters`);
  else if (/[<>]/.test(finalComment)) add('Comment', 'Comment may not contain < or >');
  else if (/[\x00-\x1f\x7f]/.test(finalComment)) add('Comment', 'Comment may not contain control characters');

  let id: string | undefined;
  if (item.Id !== undefined) {
    if (typeof item.Id !== 'string' && typeof item.Id !== 'number') add('Id', 'Id must be a string');
    else id = String(item.Id);
  }

  if (Object.keys(problems).length || !key) throw fail();
  return { personId, authenticatorId, key, comment: finalComment, ...(id !== undefined ? { id } : {}) };
}

/**
 * `<id>.json` from a path segment. Another suffix (or none) is refused as a format error; an id
 * that is not a positive integer is an invalid field; one too large to exist is simply unknown.
 */
export function parseIdRef(ref: string, unknown: () => ApiError): number {
  const dot = ref.lastIndexOf('.');
  const format = dot >= 0 ? ref.slice(dot + 1) : '';
  if (format !== 'json') throw jsonOnly(format);
  const id = ref.slice(0, dot);
  if (!id) throw invalidField('Id', 'id not provided');
  if (!/^\d+$/.test(id)) throw invalidField('Id', 'Id must be a positive integer');
  const n = parsePositiveId(id);
  if (n === undefined) {
    // Digits, but not an id as the registry writes them: 0, or too many digits for one → not found.
    if (/^[1-9]/.test(id) || /^0+$/.test(id)) throw unknown();
    throw invalidField('Id', 'Id must be a positive integer without leading zeros');
  }
  return n;
}

/** The Id echoed in an ErrorResponse: "New" for an add, the path's id otherwise. */
export function errorIdFor(method: string, url: string, params: unknown): string | undefined {
  const ref = (params as { ref?: unknown } | undefined)?.ref;
  if (typeof ref === 'string') {
    const id = ref.replace(/\.[^.]*$/, '');
    return /^\d{1,20}$/.test(id) ? id : undefined;
  }
  if (method === 'POST' && /\/ssh_keys(\.[^/?]*)?(\?|$)/.test(url)) return 'New';
  return undefined;
}

// ---- response schemas (documentation: /openapi.json reads them from the routes' config.responses) ----

const obj = (properties: Record<string, unknown>, required = Object.keys(properties)) => ({
  type: 'object',
  required,
  properties,
});
const str = { type: 'string' };
const idString = { type: 'string', pattern: '^[0-9]+$' };
const comanageTime = { type: 'string', description: 'UTC, YYYY-MM-DD hh:mm:ss' };
const personSchema = obj({ Type: { type: 'string', enum: ['CO'] }, Id: str });

const sshKeySchema = obj({
  Version: str,
  Id: idString,
  Person: personSchema,
  Comment: str,
  Type: str,
  Skey: str,
  Created: comanageTime,
  Modified: comanageTime,
  Revision: idString,
  Deleted: { type: 'boolean' },
  SshKeyAuthenticatorId: idString,
  Fingerprint: str,
});

/** The CO's one SSH key authenticator. */
const authenticatorSchema = obj({
  Version: str,
  Id: idString,
  Description: str,
  Status: str,
  Created: comanageTime,
  Modified: comanageTime,
});
/** One person's lock on it (Id: the person's older per-person authenticator id). */
const authenticatorStatusSchema = obj({
  Version: str,
  Id: idString,
  SshKeyAuthenticatorId: idString,
  Person: personSchema,
  Locked: { type: 'boolean' },
  Created: comanageTime,
  Modified: comanageTime,
});

const sshKeys = obj({
  ResponseType: { type: 'string', enum: ['SshKeys'] },
  Version: str,
  SshKeys: { type: 'array', items: sshKeySchema },
});
const authenticators = obj({
  ResponseType: { type: 'string', enum: ['SshKeyAuthenticators'] },
  Version: str,
  SshKeyAuthenticators: { type: 'array', items: authenticatorSchema },
  AuthenticatorStatuses: { type: 'array', items: authenticatorStatusSchema },
});

export const responses = {
  add: {
    201: obj({
      ResponseType: { type: 'string', enum: ['NewObject'] },
      Version: str,
      ObjectType: { type: 'string', enum: ['SshKey'] },
      Id: idString,
    }),
    415: null,
  },
  list: { 200: sshKeys, 204: null, 404: null },
  one: { 200: sshKeys, 404: null, 415: null },
  /** PUT and DELETE answer 200 with no body, as COmanage does. */
  empty: { 200: null, 404: null, 415: null },
  authenticators: { 200: authenticators, 404: null },
  authenticator: { 200: authenticators, 404: null, 415: null },
  /** /ssh_keys and /ssh_keys.<format> other than .json: only ever refused. */
  refused: { 415: null },
};
