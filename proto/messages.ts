/** TypeScript shapes of the proto messages as @grpc/proto-loader hands them over (camelCase). */

export type Validity = 'true' | 'false' | 'unknown';

export interface NodeInfo {
  name: string;
  hostname: string;
  libvirtUri: string;
  version: string;
  validationActive: boolean;
  validationSince: string;
  publicKeyPem: string;
}

export interface InstanceMsg {
  serverId: string;
  name: string;
  state: string;
  ipAddresses: string[];
  signed: boolean;
  isValid: Validity | string;
}

export interface SignatureMsg {
  serverId: string;
  instanceName: string;
  manifestJson: string;
  signature: string;
  createdAt: string;
  updatedAt: string;
  isValid: Validity | string;
}

export interface DifferenceMsg {
  component: string;
  role: string;
  target: string;
  path: string;
  expected: string;
  actual: string;
  chunks: number[];
  reason: string;
}

export interface VerdictMsg {
  serverId: string;
  isValid: Validity | string;
  checkedAt: string;
  differences: DifferenceMsg[];
  /** Parts not inspected (network disks, …); absent from older agents. */
  uninspected?: string[];
}

export interface ValidationProgressMsg {
  done: number;
  total: number;
  finished: boolean;
  active: boolean;
}

export interface EventMsg {
  time: string;
  kind: 'verdict' | 'lifecycle' | 'validation' | 'refusal' | 'destroyed' | string;
  serverId: string;
  instanceName: string;
  detail: string;
  verdict?: VerdictMsg | null;
  state: string;
  /** alert | refused | destroyed | allowed | signed; '' or absent: derived from kind and verdict. */
  action?: string;
}

export interface CheckStartRequestMsg {
  serverId: string;
  domainXml: string;
}

export interface CheckStartResponseMsg {
  allowed: boolean;
  reason: string;
}

export interface EnrollRequestMsg {
  token: string;
  csrPem: string;
  nodePublicKeyPem: string;
  agentAddress: string;
  hostname: string;
}

export interface EnrollResponseMsg {
  nodeId: number;
  nodeName: string;
  clientCertPem: string;
  caPem: string;
  identityId: string;
  restUrl: string;
}

export interface InventoryReportMsg {
  instances: InstanceMsg[];
  agentAddress: string;
  validationActive: boolean;
  libvirtUri: string;
}

export interface TrustBundleMsg {
  trustedCaKeys: string[];
  krl: Buffer;
  /** uint64, as a decimal string (longs: String). */
  krlVersion: string | number;
  revokedSerials: string[];
  loginUser: string;
  /** 'sha256' | 'blake3'; '' (or absent, from an older controller): the agent's own setting. */
  signatureDigest?: string;
}

export interface GuestTrustStatusMsg {
  serverId: string;
  state: string;
  caFingerprints: string[];
  krlVersion: string | number;
  lastSuccess: string;
  lastError: string;
  loginUser: string;
  transport: string;
}

export interface SessionReportMsg {
  serverId: string;
  event: 'start' | 'end';
  certificateId: string;
  serial: string;
  sourceIp: string;
  sessionId: string;
  reason: string;
}

export interface RefusedEntryMsg {
  serverId: string;
  reason: string;
}

/** ReportInventory / ReportTrust answer: entries for instances this node does not host are refused. */
export interface ReportAckMsg {
  nodeId: number;
  refused: RefusedEntryMsg[];
}

export interface SignHostKeysRequestMsg {
  instanceUuid: string;
  publicKeys: string[];
}

export interface SignHostKeysResponseMsg {
  certificates: string[];
  principals: string[];
  validBefore: string;
}
