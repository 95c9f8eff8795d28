/** A compute host running a vmwarden agent. Integer ids, as the Sign API's node_id. */
export interface Node {
  id: number;
  name: string;
  identityId: string | null;
  tokenHash: string | null;
  tokenExpiresAt: string | null;
  enrolledAt: string | null;
  publicKeyPem: string | null;
  agentAddress: string | null;
  hostname: string | null;
  libvirtUri: string | null;
  validationActive: boolean;
  lastSeenAt: string | null;
  createdAt: string;
}
