export type Validity = 'true' | 'false' | 'unknown';

export interface SignRecord {
  id: number;
  serverId: string;
  instanceName: string;
  nodeId: number;
  isValid: Validity;
  manifest: string;
  signature: string;
  createdAt: string;
  updatedAt: string | null;
  checkedAt: string | null;
  /** Why a verdict is "unknown": the parts its agent could not inspect (detail views only). */
  uninspected?: string[];
}

export type TaskState = 'PENDING' | 'RUNNING' | 'SUCCESS' | 'FAILURE';
export type NodeAction = 'activate' | 'deactivate';

export interface Task {
  id: string;
  action: NodeAction;
  nodeId: number;
  state: TaskState;
  progress: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
}

export type AuditAction = 'alert' | 'refused' | 'destroyed' | 'allowed' | 'signed';

export interface SignEvent {
  id: number;
  serverId: string;
  nodeId: number;
  time: string;
  component: string | null;
  oldDigest: string | null;
  newDigest: string | null;
  action: AuditAction;
  detail: string;
}
