/**
 * What a vmwarden SSH user certificate says about its holder: the key id (who, for which instance,
 * which certificate) and the principal that opens one instance. The controller encodes them when it
 * signs; the agent decodes the key id that sshd logs on each certificate login.
 */

export interface KeyIdentity {
  userId: string;
  instanceName: string;
  serverId: string;
  certificateId: string;
}

/** The one principal a certificate for an instance carries, and the one its sshd accepts. */
export const instancePrincipal = (serverId: string) => `vm-${serverId}`;

export function encodeKeyId(id: KeyIdentity): string {
  return `user:${id.userId}-vm:${id.instanceName}-sbx:${id.serverId}-cert:${id.certificateId}`;
}

const KEY_ID = /^user:(.*?)-vm:(.*)-sbx:(.*)-cert:(\S+)$/;
const CERTIFICATE_ID = /-cert:(\S+)$/;

/**
 * Reads a key id back. The certificate id (what ties a login to its certificate) is read from the
 * trailing `-cert:<id>` alone, '' when there is none; the other fields only when the whole form matches.
 */
export function decodeKeyId(keyId: string): Partial<KeyIdentity> & { certificateId: string } {
  const m = KEY_ID.exec(keyId);
  if (m) return { userId: m[1]!, instanceName: m[2]!, serverId: m[3]!, certificateId: m[4]! };
  return { certificateId: CERTIFICATE_ID.exec(keyId)?.[1] ?? '' };
}
