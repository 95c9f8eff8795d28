import { badRequest } from '../platform/errors.js';
/** TTL in minutes: default when absent, never silently capped. */
export function ttlMinutes(policy, requested) {
    const ttl = requested ?? policy.defaultTtlMinutes;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > policy.maxTtlMinutes) {
        throw badRequest('INVALID_TTL', `ttl_minutes must be a whole number of minutes between 1 and ${policy.maxTtlMinutes}, got ${JSON.stringify(requested)}`);
    }
    return ttl;
}
export function criticalOptions(policy, callerIp) {
    const options = {};
    if (policy.forceCommand)
        options['force-command'] = policy.forceCommand;
    if (policy.sourceAddress === 'caller')
        options['source-address'] = callerIp.replace(/^::ffff:/, '');
    else if (policy.sourceAddress)
        options['source-address'] = policy.sourceAddress;
    return options;
}
//# sourceMappingURL=policy.js.map