import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../platform/errors.js';

/**
 * How deep a JSON request body may nest. No request of this API nests beyond 4 levels; a
 * 10,000-level body (`[[[[…]]]]` in any field) used to exhaust the stack in whatever walked it
 * recursively after parsing (a 500 with fastify's own body, to an unauthenticated caller).
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether JSON text opens more than `max` arrays/objects inside each other. One pass, no
 * recursion, strings skipped (a bracket inside a string does not count). Malformed text is left
 * to the parser.
 */
export function jsonNestsDeeper(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

export const tooDeep = () =>
  new ApiError(
    400,
    'COULD_NOT_PARSE_BODY',
    `could not parse body: JSON nested deeper than ${MAX_JSON_DEPTH} levels`,
    { field: 'body', reason: `nested deeper than ${MAX_JSON_DEPTH} levels` },
  );

/**
 * The application/json parser of every route: fastify's own (prototype-poisoning checks, its
 * invalid body errors), after the depth check. Route body limits still apply.
 *
 * An empty body is no body (request.body stays undefined), whatever the content type says:
 * generated clients (OpenZiti's, the virsh-sandbox SDK) send `Content-Type: application/json` on
 * every request, bodiless ones included. A route whose body is optional then runs as without one;
 * a route whose body is required refuses it in schema validation, in its group's format.
 */
export function installJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string' },
    (request: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.length === 0) return done(null, undefined);
      if (jsonNestsDeeper(text, MAX_JSON_DEPTH)) return done(tooDeep());
      return (parse as (req: FastifyRequest, body: string, done: unknown) => void)(request, text, done);
    },
  );
}
