/**
 * Ids in paths, parsed strictly and the same way everywhere. Query strings and params go through ajv
 * with type coercion, which reads `+1`, `0x10`, ` 1`, `1e1` and `01` as numbers: ids are therefore
 * matched as strings first (these patterns), then converted. A group renders the 400 in its format.
 */

/** A positive integer id: no sign, no leading zero, no exponent, no whitespace, at most 15 digits. */
export const POSITIVE_ID_PATTERN = '^[1-9][0-9]{0,14}$';
const POSITIVE_ID = new RegExp(POSITIVE_ID_PATTERN);

/** A canonical UUID: lowercase hex, hyphenated, no braces or urn:uuid: prefix (what the controller issues). */
export const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

/** JSON schema of a positive integer path id (a string: see above). */
export const positiveIdParam = { type: 'string', pattern: POSITIVE_ID_PATTERN } as const;

/** JSON schema of a canonical UUID path id. */
export const uuidParam = { type: 'string', pattern: UUID_PATTERN } as const;

/** The id, or undefined when `raw` is not a positive integer id written canonically. */
export function parsePositiveId(raw: unknown): number | undefined {
  if (typeof raw !== 'string' || !POSITIVE_ID.test(raw)) return undefined;
  return Number(raw); // ≤ 15 digits: always a safe integer
}
