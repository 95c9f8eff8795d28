import * as grpc from '@grpc/grpc-js';
import type {
  EventMsg,
  GuestTrustStatusMsg,
  InventoryReportMsg,
  RefusedEntryMsg,
  ReportAckMsg,
  SessionReportMsg,
  SignHostKeysResponseMsg,
  TrustBundleMsg,
} from '../../proto/messages.js';
import type { AgentCredentials, Enrollment } from './credentials.js';
import { ControllerConnection, type ControllerConnectionOptions } from './controller-connection.js';

/** The controllers an enrolled agent talks to: the configured ones, else those it enrolled with. */
export function controllerAddresses(configured: readonly string[], enrollment: Enrollment): string[] {
  if (configured.length) return [...configured];
  return enrollment.controllers?.length ? [...enrollment.controllers] : [enrollment.controller];
}

/**
 * The agent's mTLS client to the controller: inventory and event reports. Several addresses
 * (`addresses`, default: those recorded at enrollment) fail over (see ControllerConnection).
 */
export class ControllerLink {
  private readonly conn: ControllerConnection;

  constructor(
    creds: AgentCredentials,
    opts: ControllerConnectionOptions & { addresses?: readonly string[] } = {},
  ) {
    this.conn = new ControllerConnection(
      opts.addresses ?? controllerAddresses([], creds.enrollment),
      grpc.credentials.createSsl(Buffer.from(creds.ca), Buffer.from(creds.key), Buffer.from(creds.cert)),
      opts,
    );
  }

  /** The address reports go to first (the last one that answered). */
  get controller(): string {
    return this.conn.address;
  }

  async reportInventory(report: InventoryReportMsg): Promise<void> {
    await this.conn.call('reportInventory', report);
  }

  async reportEvent(event: EventMsg): Promise<void> {
    await this.conn.call('reportEvent', event);
  }

  getTrustBundle(): Promise<TrustBundleMsg> {
    return this.conn.call('getTrustBundle', {});
  }

  /** The entries the controller refused (instances this node does not host). */
  async reportTrust(guests: GuestTrustStatusMsg[]): Promise<RefusedEntryMsg[]> {
    return (await this.conn.call<ReportAckMsg>('reportTrust', { guests })).refused ?? [];
  }

  async reportSession(report: SessionReportMsg): Promise<string> {
    return (await this.conn.call<{ sessionId: string }>('reportSession', report)).sessionId;
  }

  /** Host certificates for a guest's sshd host keys (the controller chooses the principals). */
  signHostKeys(instanceUuid: string, publicKeys: string[]): Promise<SignHostKeysResponseMsg> {
    return this.conn.call('signHostKeys', { instanceUuid, publicKeys });
  }

  close(): void {
    this.conn.close();
  }
}
