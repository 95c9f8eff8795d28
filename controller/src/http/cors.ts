import type { FastifyInstance } from 'fastify';

/** What a browser may send cross-origin: every method the REST surface has, and the auth headers. */
export const CORS_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
export const CORS_HEADERS = 'zt-session, x-auth-token, authorization, content-type, accept';
const MAX_AGE_SECONDS = '600';

/** 'https://a.example:8443/' → 'https://a.example:8443' (an Origin header never has a path or a slash). */
export function normalizeOrigin(origin: string): string {
  return origin.trim().replace(/\/+$/, '').toLowerCase();
}

/**
 * CORS for an allow-list of origins (`corsOrigins`); without one nothing is added. A preflight
 * (OPTIONS with Access-Control-Request-Method) from an allowed origin is answered 204 before any
 * route or auth hook runs; every other answer to an allowed origin gets Access-Control-Allow-Origin
 * (the exact origin, with Vary: Origin). Other origins get no CORS headers at all.
 */
export function installCors(app: FastifyInstance, origins: string[]): void {
  const allowed = new Set(origins.map(normalizeOrigin).filter(Boolean));
  if (allowed.size === 0) return;
  const allowedOrigin = (header: unknown) =>
    typeof header === 'string' && allowed.has(normalizeOrigin(header)) ? header : undefined;

  app.addHook('onRequest', (request, reply, done) => {
    const origin = allowedOrigin(request.headers.origin);
    if (!origin || request.method !== 'OPTIONS' || !request.headers['access-control-request-method'])
      return done();
    void reply
      .code(204)
      .header('access-control-allow-origin', origin)
      .header('vary', 'Origin')
      .header('access-control-allow-methods', CORS_METHODS)
      .header('access-control-allow-headers', CORS_HEADERS)
      .header('access-control-max-age', MAX_AGE_SECONDS)
      .send();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    const origin = allowedOrigin(request.headers.origin);
    if (origin && !reply.hasHeader('access-control-allow-origin')) {
      void reply.header('access-control-allow-origin', origin);
      const vary = reply.getHeader('vary');
      if (!vary) void reply.header('vary', 'Origin');
      else if (!/\borigin\b/i.test(String(vary))) void reply.header('vary', `${vary}, Origin`);
    }
    done(null, payload);
  });
}
