import { forbidden, unauthorized } from '../platform/errors.js';
import { fingerprintOf } from '../pki/internal-ca.js';
/** The API session token, from any of the headers the four groups' clients use. */
export function tokenFrom(headers) {
    const pick = (v) => typeof v === 'string' && v.trim() ? v.trim() : undefined;
    const bearer = pick(headers.authorization);
    return (pick(headers['zt-session']) ??
        pick(headers['x-auth-token']) ??
        (bearer && /^bearer\s+/i.test(bearer) ? bearer.replace(/^bearer\s+/i, '') : undefined));
}
/** onRequest hook: every non-public route needs a live API session. */
export function requireSession(sessions) {
    return async (request) => {
        if (request.routeOptions.config?.public)
            return;
        const token = tokenFrom(request.headers);
        const principal = token ? await sessions.resolve(token) : null;
        if (!principal) {
            throw unauthorized('UNAUTHORIZED', token
                ? 'the API session token is invalid or has expired'
                : 'no API session: send the token as zt-session, X-Auth-Token or Authorization: Bearer');
        }
        request.principal = principal;
    };
}
export function caller(request) {
    if (!request.principal)
        throw unauthorized('UNAUTHORIZED', 'no API session');
    return request.principal;
}
export function requireAdmin(request) {
    const p = caller(request);
    if (p.identity.role !== 'admin')
        throw forbidden('this action needs the admin role');
    return p;
}
/** The client certificate presented on this TLS connection, if any. */
export function peerCertificate(request) {
    const socket = request.raw.socket;
    if (typeof socket.getPeerCertificate !== 'function')
        return undefined;
    const cert = socket.getPeerCertificate();
    if (!cert || !cert.raw)
        return undefined;
    return { authorized: socket.authorized === true, fingerprint: fingerprintOf(cert.raw) };
}
//# sourceMappingURL=auth.js.map