/**
 * The controller's trust pushes (UpdateTrust to each agent), seen on its agent clients: per node, the
 * last push answered or failed. For the revocation tests and the revocation benchmark.
 */
import type { AgentClients } from '../../controller/src/nodes/agent-clients.js';

export interface TrustPush {
  /** Date.now() when the agent's answer (or the error) arrived. */
  doneAt: number;
  ms: number;
  krlVersion: number;
  sessionsEnded: number;
  /** Guest agent round trips the agent spent on the push (all its guests). */
  guestRoundTrips: number;
  error?: string;
}

/** From now on, records each trust push of these clients by node id. */
export function watchTrustPushes(agents: AgentClients): ReadonlyMap<number, TrustPush> {
  const pushes = new Map<number, TrustPush>();
  const clientFor = agents.for.bind(agents);
  agents.for = (node) => {
    const client = clientFor(node);
    return {
      ...client,
      updateTrust: async (bundle) => {
        const t0 = Date.now();
        const krlVersion = Number(bundle.krlVersion);
        try {
          const r = await client.updateTrust(bundle);
          pushes.set(node.id, {
            doneAt: Date.now(),
            ms: Date.now() - t0,
            krlVersion,
            sessionsEnded: r.sessionsEnded,
            guestRoundTrips: r.guestRoundTrips,
          });
          return r;
        } catch (err) {
          const error = String((err as Error).message ?? err);
          pushes.set(node.id, {
            doneAt: Date.now(),
            ms: Date.now() - t0,
            krlVersion,
            sessionsEnded: 0,
            guestRoundTrips: 0,
            error,
          });
          throw err;
        }
      },
    };
  };
  return pushes;
}
