/** Prometheus series of one server instance (own registry, so tests can run several). */
import { ERROR_CODES } from "../protocol/errors.js";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** Sub-millisecond to a second: the send path's phases are a fraction of a millisecond when all is well. */
const FINE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];

export class Metrics {
  readonly registry = new Registry();
  readonly socketsConnected = new Gauge({
    name: "chat_sockets_connected",
    help: "Socket.IO connections open on /chat",
    registers: [this.registry],
  });
  readonly messagesAccepted = new Counter({
    name: "chat_messages_accepted_total",
    help: "User messages stored (idempotent retries not counted)",
    registers: [this.registry],
  });
  readonly ackLatency = new Histogram({
    name: "chat_ack_latency_seconds",
    help: "Time from receiving a client event to sending its ack",
    labelNames: ["event"] as const,
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers: [this.registry],
  });
  /** Where a message:send's time goes (see SendTiming in src/db/pg-message-store.ts). */
  readonly sendQueue = new Histogram({
    name: "chat_send_queue_seconds",
    help: "Time a message:send waited in the group-commit queue for its batch to leave",
    buckets: FINE_BUCKETS,
    registers: [this.registry],
  });
  readonly poolWait = new Histogram({
    name: "chat_db_pool_wait_seconds",
    help: "Time waiting for a PostgreSQL pool connection, by use",
    labelNames: ["use"] as const,
    buckets: FINE_BUCKETS,
    registers: [this.registry],
  });
  readonly sendStatement = new Histogram({
    name: "chat_send_statement_seconds",
    help: "Time of one send batch's statement (round trip and commit)",
    buckets: FINE_BUCKETS,
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: "chat_errors_total",
    help: "Errors returned to clients, by code",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: "chat_socket_auth_failures_total",
    help: "Socket connections refused for a missing, forged or expired token",
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: "chat_http_requests_total",
    help: "HTTP requests by route and status",
    labelNames: ["route", "status"] as const,
    registers: [this.registry],
  });

  readonly timeToFirstToken = new Histogram({
    name: "chat_time_to_first_token_seconds",
    help: "From a user message's arrival to the first token of the assistant's reply",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  readonly assistantTurns = new Counter({
    name: "chat_assistant_turns_total",
    help: "Assistant replies by final status",
    labelNames: ["status"] as const,
    registers: [this.registry],
  });
  readonly llmTokens = new Counter({
    name: "chat_llm_tokens_total",
    help: "LLM tokens spent by assistant replies as they end, by model and kind (prompt or completion)",
    labelNames: ["model", "kind"] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: "chat_rate_limited_total",
    help: "Requests refused by a rate limit, by limit",
    labelNames: ["limit"] as const,
    registers: [this.registry],
  });
  readonly messagesIndexed = new Counter({
    name: "chat_messages_indexed_total",
    help: "Messages embedded and stored in the vector store",
    registers: [this.registry],
  });
  readonly indexReused = new Counter({
    name: "chat_index_reused_vectors_total",
    help: "Messages indexed with the vector their turn's search had embedded, instead of being embedded again",
    registers: [this.registry],
  });
  readonly indexFailures = new Counter({
    name: "chat_index_failures_total",
    help: "Messages whose indexing attempt failed (they are retried)",
    registers: [this.registry],
  });
  readonly indexBatchSeconds = new Histogram({
    name: "chat_index_batch_seconds",
    help: "Time to embed and store one indexing batch",
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  /** Set by the app: reads the backlog when scraped. */
  backlogSource: (() => Promise<number>) | undefined;
  readonly indexBacklog = new Gauge({
    name: "chat_index_backlog",
    help: "Messages waiting to be indexed",
    registers: [this.registry],
    collect: async () => {
      if (!this.backlogSource) return;
      try {
        this.indexBacklog.set(await this.backlogSource());
      } catch {
        // database down: keep the last value
      }
    },
  });

  /** Set by the app: reads the passage backlog when scraped. */
  passageBacklogSource: (() => Promise<number>) | undefined;
  readonly passageIndexBacklog = new Gauge({
    name: "chat_passage_index_backlog",
    help: "Passages of attachments waiting to be indexed (embedded); lexical search finds them meanwhile",
    registers: [this.registry],
    collect: async () => {
      if (!this.passageBacklogSource) return;
      try {
        this.passageIndexBacklog.set(await this.passageBacklogSource());
      } catch {
        // database down: keep the last value
      }
    },
  });

  constructor() {
    for (const code of ERROR_CODES) this.errors.inc({ code }, 0);
    // Includes memchat_nodejs_eventloop_lag_* (reset at each scrape: the figures cover the time since the last one)
    // and memchat_nodejs_gc_duration_seconds, in buckets fine enough to see pauses of a millisecond.
    collectDefaultMetrics({ register: this.registry, prefix: "memchat_", gcDurationBuckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1] });
  }
}
