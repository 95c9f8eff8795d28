import * as grpc from '@grpc/grpc-js';
import { vmwardenServices } from '../../proto/load.js';
import type {
  EventMsg,
  GuestTrustStatusMsg,
  InventoryReportMsg,
  RefusedEntryMsg,
  ReportAckMsg,
  SessionReportMsg,
  TrustBundleMsg,
} from '../../proto/messages.js';
import type { AgentCredentials } from './credentials.js';

/** The agent's mTLS client to the controller: inventory and event reports. */
export class ControllerLink {
  private readonly client: any;

  constructor(creds: AgentCredentials) {
    const { Controller } = vmwardenServices();
    this.client = new Controller(
      creds.enrollment.controller,
      grpc.credentials.createSsl(Buffer.from(creds.ca), Buffer.from(creds.key), Buffer.from(creds.cert)),
      { 'grpc.ssl_target_name_override': 'localhost' },
    );
  }

  reportInventory(report: InventoryReportMsg): Promise<void> {
    return this.unary('reportInventory', report);
  }

  reportEvent(event: EventMsg): Promise<void> {
    return this.unary('reportEvent', event);
  }

  getTrustBundle(): Promise<TrustBundleMsg> {
    return this.call('getTrustBundle', {});
  }

  /** The entries the controller refused (instances this node does not host). */
  async reportTrust(guests: GuestTrustStatusMsg[]): Promise<RefusedEntryMsg[]> {
    return (await this.call<ReportAckMsg>('reportTrust', { guests })).refused ?? [];
  }

  async reportSession(report: SessionReportMsg): Promise<string> {
    return (await this.call<{ sessionId: string }>('reportSession', report)).sessionId;
  }

  close(): void {
    this.client.close();
  }

  private call<T>(method: string, req: object): Promise<T> {
    return new Promise((resolve, reject) =>
      this.client[method](req, { deadline: Date.now() + 15_000 }, (err: grpc.ServiceError | null, res: T) =>
        err ? reject(err) : resolve(res),
      ),
    );
  }

  private unary(method: string, req: object): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client[method](req, { deadline: Date.now() + 15_000 }, (err: grpc.ServiceError | null) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
}
