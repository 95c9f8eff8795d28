// One guest as guest trust keeps it, and what the parts of guest trust (poller, install, failover,
// sessions) share: the host, the controller link, the options and the trust bundle in force.
import type { Hypervisor } from '../libvirt/hypervisor.js';
import type {
  GuestTrustStatusMsg,
  RefusedEntryMsg,
  SessionReportMsg,
  SignHostKeysResponseMsg,
  TrustBundleMsg,
} from '../../../proto/messages.js';
import type { GuestChannel } from './channel.js';
import { GuestAgent } from './guest-agent.js';
import type { HostKeyPins } from './host-keys.js';
import type { SshTarget } from './ssh-channel.js';
import { TrustInstaller } from './trust.js';

/** What guest trust needs from the controller link. */
export interface TrustLink {
  getTrustBundle(): Promise<TrustBundleMsg>;
  /** Resolves with the entries the controller refused (instances it does not count as this node's). */
  reportTrust(guests: GuestTrustStatusMsg[]): Promise<RefusedEntryMsg[] | void>;
  /** Returns the session id the controller gave a start. */
  reportSession(r: SessionReportMsg): Promise<string>;
  /** Host certificates for a guest's sshd host keys (host-certs.ts); absent: none are installed. */
  signHostKeys?(instanceUuid: string, publicKeys: string[]): Promise<SignHostKeysResponseMsg>;
}

export interface GuestTrustOptions {
  pollMs?: number;
  only?: (uuid: string) => boolean;
  agentProbeMs?: number;
  /** The SSH fallback of an instance (by UUID or domain name), if it has one. */
  sshTarget?: (uuid: string, name: string) => SshTarget | undefined;
  hostKeyPins?: HostKeyPins;
  /** Install host certificates signed by the controller's host CA in guests (default true). */
  hostCertificates?: boolean;
  log?: (msg: string, err?: unknown) => void;
}

export interface GuestTrustContext {
  readonly hypervisor: Hypervisor;
  readonly link: () => TrustLink;
  readonly opts: GuestTrustOptions;
  /** The trust bundle in force now (undefined until the first pull). */
  bundle(): TrustBundleMsg | undefined;
}

export interface LiveSession {
  pid: number;
  sessionId: string;
  certificateId: string;
  serial: string;
  killed?: boolean;
}

export interface Guest {
  serverId: string;
  name: string;
  guestAgent: GuestAgent;
  /** The way in now: the guest agent, or SSH when it has none and a provisioning key is configured. */
  channel: GuestChannel;
  installer: TrustInstaller;
  /** On SSH: when to ask the guest agent again (it may have come up). */
  agentProbeAt?: number;
  bootId?: string;
  /** Key of the trust content installed during bootId (CA keys, login user); undefined: not yet. */
  installed?: string;
  krlVersion?: string;
  cursor?: string;
  /** The last poll's journal lines were all read: the next may skip an unchanged journal. */
  journalRead?: boolean;
  sessions: Map<number, LiveSession>;
  status: GuestTrustStatusMsg;
  queue: Promise<unknown>;
  /** No guest agent: not asked again before this time (ms). */
  retryAt?: number;
}

/** A running domain seen for the first time: reached through its guest agent, nothing installed yet. */
export function newGuest(uri: string, d: { uuid: string; name: string }): Guest {
  const agent = new GuestAgent(uri, d.uuid);
  return {
    serverId: d.uuid,
    name: d.name,
    guestAgent: agent,
    channel: agent,
    installer: new TrustInstaller(agent),
    sessions: new Map(),
    status: {
      serverId: d.uuid,
      state: 'pending',
      caFingerprints: [],
      krlVersion: '0',
      lastSuccess: '',
      lastError: '',
      loginUser: '',
      transport: 'guest-agent',
    },
    queue: Promise.resolve(),
  };
}

/** Runs `fn` after the work queued on this guest (one conversation with a guest at a time). */
export function serial<T>(g: Guest, fn: () => Promise<T>): Promise<T> {
  const next = g.queue.then(fn, fn);
  g.queue = next.catch(() => undefined);
  return next;
}
