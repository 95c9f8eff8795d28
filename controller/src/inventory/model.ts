export type InstanceState = 'running' | 'shut off' | 'paused' | 'crashed' | 'unknown';
export const INSTANCE_STATES: InstanceState[] = ['running', 'shut off', 'paused', 'crashed', 'unknown'];

/** A VM that access can be granted to: the libvirt domain UUID is its id everywhere. */
export interface Instance {
  serverId: string;
  instanceName: string;
  nodeId: number | null;
  ipAddress: string;
  sshPort: number;
  loginUser: string;
  state: InstanceState;
  source: 'manual' | 'agent';
  createdAt: string;
  updatedAt: string;
}

export interface Grant {
  serverId: string;
  identityId: string;
  createdAt: string;
}
