// What happens on this host, as the agent's event bus carries it: the enforcer, the change watcher
// and the gRPC service emit these; the transport edge (gRPC stream, controller link) maps them to
// EventMsg.
import type { Verdict } from './signature/service.js';

export interface AgentEvent {
  time: string;
  kind: 'verdict' | 'lifecycle' | 'validation' | 'refusal' | 'destroyed';
  serverId: string;
  instanceName: string;
  detail: string;
  verdict: Verdict | null;
  /** The domain's state after a lifecycle event; '' otherwise. */
  state: string;
  /** alert | refused | destroyed | allowed | signed; absent: derived from kind and verdict. */
  action?: string;
}

/** The event every verdict becomes, whoever asked for the check (controller, watcher, nightly job). */
export function verdictEvent(v: Verdict): AgentEvent {
  return {
    time: v.checkedAt,
    kind: 'verdict',
    serverId: v.serverId,
    instanceName: '',
    detail: v.isValid,
    verdict: v,
    state: '',
  };
}
