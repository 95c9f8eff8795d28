import { badRequest } from '../platform/errors.js';

/**
 * The one reader of limit/offset for every list route (identities, instances, certificates,
 * sessions, audit, signatures). A value SQLite cannot take as an integer (`99999999999999999999`,
 * `1e999`, `9223372036854775808` arrive as floats or Infinity after coercion) used to reach the
 * store and come back as a 500: here it is a 400 INVALID_PAGINATION, which each group's error
 * handler renders in its own format.
 */
export interface PageRules {
  defaultLimit: number;
  maxLimit: number;
  /** Query names read for the offset, first present wins (Sign API also writes `$offset`). */
  offsetNames?: readonly string[];
  limitNames?: readonly string[];
}

export interface Page {
  limit: number;
  offset: number;
}

/** Offsets beyond 2^53 cannot be exact in JavaScript, and no table here comes near. */
export const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

const DIGITS = /^(0|[1-9][0-9]{0,15})$/;

/** A value from a coerced query (number) or a raw one (string); anything else is refused. */
function integer(name: string, value: unknown, min: number, max: number): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && DIGITS.test(value)) n = Number(value);
  else n = NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const reason = `must be an integer between ${min} and ${max}`;
    throw badRequest('INVALID_PAGINATION', `${name} ${reason}`, { field: name, reason });
  }
  return n;
}

function pick(query: Record<string, unknown>, names: readonly string[]): [string, unknown] | undefined {
  for (const name of names) if (query[name] !== undefined) return [name, query[name]];
  return undefined;
}

/**
 * Reads the page window of a list request. `override` wins over the query (the OpenZiti filter's
 * own `skip`/`limit`).
 */
export function readPage(
  query: unknown,
  rules: PageRules,
  override: { offset?: number; limit?: number } = {},
): Page {
  const q = (query && typeof query === 'object' ? query : {}) as Record<string, unknown>;
  const limit =
    override.limit !== undefined
      ? (['limit', override.limit] as const)
      : (pick(q, rules.limitNames ?? ['limit']) ?? (['limit', rules.defaultLimit] as const));
  const offset =
    override.offset !== undefined
      ? (['offset', override.offset] as const)
      : (pick(q, rules.offsetNames ?? ['offset']) ?? (['offset', 0] as const));
  return {
    limit: integer(limit[0], limit[1], 1, rules.maxLimit),
    offset: integer(offset[0], offset[1], 0, MAX_OFFSET),
  };
}

/**
 * The query-schema properties of a page window (documented in /openapi.json, coerced by ajv). The
 * offset has no `maximum` here: readPage refuses what is too large, as INVALID_PAGINATION.
 */
export function pageProperties(rules: PageRules) {
  const props: Record<string, { type: 'integer'; minimum: number; maximum?: number; description?: string }> =
    {};
  for (const name of rules.limitNames ?? ['limit'])
    props[name] = { type: 'integer', minimum: 1, maximum: rules.maxLimit };
  for (const name of rules.offsetNames ?? ['offset'])
    props[name] = { type: 'integer', minimum: 0, description: `at most ${MAX_OFFSET} (2^53 - 1)` };
  return props;
}
