// The way into a guest: its guest agent, or SSH (a provisioning key) when it has none; back to the
// guest agent when it answers again. Failures set the guest's status and when to try again.
import type { GuestChannel } from './channel.js';
import { NoGuestAgentError } from './guest-agent.js';
import { serial, type Guest, type GuestTrustContext } from './guest.js';
import { SshChannel } from './ssh-channel.js';
import { TrustInstaller } from './trust.js';

const AGENT_PROBE_MS = 30_000;

const nextAgentProbe = (ctx: GuestTrustContext) => Date.now() + (ctx.opts.agentProbeMs ?? AGENT_PROBE_MS);

/** Switches the way into a guest; what was installed through the other one is checked again. */
export function useChannel(ctx: GuestTrustContext, g: Guest, channel: GuestChannel): void {
  if (g.channel !== g.guestAgent) g.channel.close();
  g.channel = channel;
  g.installer = new TrustInstaller(channel);
  g.installed = undefined;
  g.retryAt = undefined;
  g.agentProbeAt = nextAgentProbe(ctx);
  g.status = { ...g.status, transport: channel.transport };
  ctx.opts.log?.(`guest ${g.name} (${g.serverId}): reached through ${channel.transport} from now on`);
}

/** A guest reached over SSH whose guest agent answers again goes back to the guest agent. */
export async function probeGuestAgent(ctx: GuestTrustContext, g: Guest): Promise<void> {
  g.agentProbeAt = nextAgentProbe(ctx);
  const back = await g.guestAgent.ping().then(
    () => true,
    () => false,
  );
  if (back) await serial(g, async () => useChannel(ctx, g, g.guestAgent));
}

export function failed(ctx: GuestTrustContext, g: Guest, err: unknown): void {
  const noAgent = err instanceof NoGuestAgentError;
  const target = noAgent && g.channel === g.guestAgent && ctx.opts.sshTarget?.(g.serverId, g.name);
  if (target && ctx.opts.hostKeyPins) {
    const pins = ctx.opts.hostKeyPins;
    useChannel(ctx, g, new SshChannel(g.serverId, target, () => ctx.hypervisor.addresses(g.serverId), pins));
    g.status = {
      ...g.status,
      state: 'pending',
      lastError: `no guest agent (${(err as Error).message}): using SSH`,
    };
    return;
  }
  const lastError = noAgent
    ? `no guest agent: ${(err as Error).message}`
    : String((err as Error)?.message ?? err);
  if (lastError !== g.status.lastError)
    ctx.opts.log?.(`guest ${g.name} (${g.serverId})`, new Error(lastError));
  g.status = { ...g.status, state: noAgent ? 'no-guest-agent' : 'failed', lastError };
  if (g.channel !== g.guestAgent) {
    // SSH down (guest booting, sshd restarting, network): tried again shortly. The boot id tells
    // at the next poll whether the guest rebooted meanwhile; the install is checked again anyway.
    g.retryAt = Date.now() + 3_000;
    g.installed = undefined;
  } else if (noAgent) {
    // Booting guests answer within a minute; domains without the channel are asked rarely.
    g.retryAt = Date.now() + (/not configured/i.test((err as Error).message) ? 30_000 : 3_000);
    g.installed = undefined;
  }
}
