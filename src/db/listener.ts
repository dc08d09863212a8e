/**
 * A dedicated connection that LISTENs on a channel and reconnects when lost.
 * Notifications are hints only (callers also poll), so a gap while
 * reconnecting loses nothing.
 */
import pg from "pg";
import type { Logger } from "pino";

export class PgListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly onNotify: () => void,
    private readonly log: Logger,
  ) {}

  start(): void {
    void this.connect(0);
  }

  private async connect(attempt: number): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url, application_name: "memchat-listener" });
    client.on("error", () => undefined); // 'end' below handles the loss
    client.on("notification", () => this.onNotify());
    client.on("end", () => {
      if (this.client === client) this.client = undefined;
      this.scheduleReconnect(1);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      if (this.stopped) {
        await client.end();
        return;
      }
      this.client = client;
      if (attempt > 0) this.log.info({ channel: this.channel }, "LISTEN connection restored");
      this.onNotify(); // catch up on anything announced while we were away
    } catch (err) {
      client.end().catch(() => undefined);
      if (attempt === 0 || attempt % 10 === 0) this.log.warn({ err: (err as Error).message, channel: this.channel }, "LISTEN connection failed; retrying");
      this.scheduleReconnect(attempt + 1);
    }
  }

  private scheduleReconnect(attempt: number): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect(attempt);
    }, Math.min(250 * 2 ** attempt, 5_000));
    this.retryTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
