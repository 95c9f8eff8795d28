import type { Database } from '../../../lib/store/database.js';
import type { SshAuthority } from './authority.js';
import type { KrlPublisher } from './krl-publisher.js';

const CHANNEL = 'trust';

/**
 * Keeps this controller's trust state (CA keys, KRL) in step with the store that other controllers
 * write too. A revocation or CA change made here is announced (NOTIFY); every controller that hears
 * it — and every `catchUpMs` anyway, in case a notification was lost — re-reads the CA records and
 * the KRL version, and when either moved, rebuilds the KRL and pushes it to the agents connected to
 * it. Checks never overlap; one asked for during a check runs right after it.
 */
export class TrustSync {
  private timer?: NodeJS.Timeout;
  private unlisten?: () => void;
  private running?: Promise<void>;
  private again = false;

  constructor(
    private readonly db: Pick<Database, 'listen' | 'notify'>,
    private readonly authority: SshAuthority,
    private readonly krl: KrlPublisher,
    private readonly catchUpMs = 5_000,
    private readonly log: (msg: string, err?: unknown) => void = () => undefined,
  ) {}

  start(): void {
    this.krl.announce = () =>
      void this.db.notify(CHANNEL).catch((err) => this.log('trust announce failed', err));
    this.unlisten = this.db.listen(CHANNEL, () => void this.check());
    this.timer = setInterval(() => void this.check(), this.catchUpMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.unlisten?.();
    this.krl.announce = () => undefined;
    await this.running;
  }

  /** Brings this controller up to date with the store (resolves when it is). */
  check(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.sync();
        } catch (err) {
          this.log('trust sync failed', err);
        }
      } while (this.again);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private async sync(): Promise<void> {
    const before = caState(this.authority);
    await this.authority.reload();
    const casMoved = caState(this.authority) !== before;
    if (casMoved || (await this.krl.storedVersion()) !== this.krl.version) await this.krl.publish();
  }
}

const caState = (authority: SshAuthority) =>
  authority
    .all()
    .map((r) => `${r.id}:${r.status}`)
    .join(',');
