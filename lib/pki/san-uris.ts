/**
 * SAN URIs that name vmwarden parties inside internal-CA certificates: the controller issues them,
 * and each side of an mTLS connection checks the other's.
 */
export const CONTROLLER_URI = 'urn:vmwarden:controller';
export const nodeUri = (nodeId: number) => `urn:vmwarden:node:${nodeId}`;
export const identityUri = (identityId: string) => `urn:vmwarden:identity:${identityId}`;
