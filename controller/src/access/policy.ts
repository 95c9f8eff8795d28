import { badRequest } from '../platform/errors.js';

/** What every certificate may carry. Comes from the controller config. */
export interface AccessPolicy {
  defaultTtlMinutes: number;
  maxTtlMinutes: number;
  extensions: string[];
  /** e.g. `tmux new-session -A -s vmwarden`; empty = none. */
  forceCommand: string;
  /** '' = none; 'caller' = the requesting client's address; else a comma-separated CIDR list. */
  sourceAddress: string;
}

/** TTL in minutes: default when absent, never silently capped. */
export function ttlMinutes(policy: AccessPolicy, requested: number | undefined): number {
  const ttl = requested ?? policy.defaultTtlMinutes;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > policy.maxTtlMinutes) {
    throw badRequest(
      'INVALID_TTL',
      `ttl_minutes must be a whole number of minutes between 1 and ${policy.maxTtlMinutes}, got ${JSON.stringify(requested)}`,
    );
  }
  return ttl;
}

export function criticalOptions(policy: AccessPolicy, callerIp: string): Record<string, string> {
  const options: Record<string, string> = {};
  if (policy.forceCommand) options['force-command'] = policy.forceCommand;
  if (policy.sourceAddress === 'caller') options['source-address'] = callerIp.replace(/^::ffff:/, '');
  else if (policy.sourceAddress) options['source-address'] = policy.sourceAddress;
  return options;
}
