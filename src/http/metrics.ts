/** Prometheus series of one server instance (own registry, so tests can run several). */
import { ERROR_CODES } from "../protocol/errors.js";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

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

  constructor() {
    for (const code of ERROR_CODES) this.errors.inc({ code }, 0);
    collectDefaultMetrics({ register: this.registry, prefix: "memchat_" });
  }
}
