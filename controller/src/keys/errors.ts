// The errors of the SSH key registry, with COmanage's codes and messages (wire.ts renders them).
import { ApiError } from '../platform/errors.js';

/** 400 "Invalid Fields" with COmanage's InvalidFields map. */
export class InvalidFieldsError extends ApiError {
  constructor(readonly fields: Record<string, string[]>) {
    const first = Object.entries(fields)[0];
    super(400, 'INVALID_FIELDS', first ? `${first[0]}: ${first[1][0]}` : 'Invalid Fields');
  }
}

export const invalidField = (field: string, message: string) =>
  new InvalidFieldsError({ [field]: [message] });
export const sshKeyUnknown = () => new ApiError(404, 'SSHKEY_UNKNOWN', 'SshKey Unknown');
export const personUnknown = () => new ApiError(404, 'COPERSON_UNKNOWN', 'CO Person Unknown');
export const authenticatorUnknown = () =>
  new ApiError(404, 'AUTHENTICATOR_UNKNOWN', 'SshKeyAuthenticator Unknown');
