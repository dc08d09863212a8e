/**
 * Composition root: picks each adapter from configuration, wires the
 * services, and returns a running server with an orderly stop().
 */
import http from "node:http";
import path from "node:path";
import type pg from "pg";
import type { Logger } from "pino";
import { AccountService } from "./account/account-service.js";
import { AuthService } from "./auth/auth-service.js";
import { loadJwtSecret, TokenService } from "./auth/tokens.js";
import { AssistantService } from "./chat/assistant-service.js";
import { ChatService } from "./chat/chat-service.js";
import { ConfigurationService } from "./chat/configuration-service.js";
import { LifecycleService } from "./chat/lifecycle-service.js";
import { QuotaService } from "./chat/quota-service.js";
import { usernames } from "./chat/usernames.js";
import { ContextBuilder } from "./chat/context-builder.js";
import { RateLimits } from "./chat/rate-limits.js";
import { SessionList } from "./chat/session-list.js";
import type { Config } from "./config.js";
import { type EmbeddedPostgresHandle, startEmbeddedPostgres } from "./db/embedded-postgres.js";
import { isDatabaseUnavailable } from "./db/errors.js";
import { appliedMigrationVersion, latestMigrationVersion, runMigrations } from "./db/migrate.js";
import { PgAssistantStore } from "./db/pg-assistant-store.js";
import { PgConfigurationStore } from "./db/pg-configuration-store.js";
import { PgAttachmentStore } from "./db/pg-attachment-store.js";
import { PgPassageStore } from "./db/pg-passage-store.js";
import { attachmentMetrics } from "./files/attachment-metrics.js";
import { AttachmentService } from "./files/attachment-service.js";
import { openFileStore } from "./files/open-file-store.js";
import { startPassageRunner } from "./files/passage-runtime.js";
import { AttachmentReadiness } from "./files/attachment-readiness.js";
import { attachmentsJob } from "./maintenance/attachments-job.js";
import { PgLifecycleStore } from "./db/pg-lifecycle-store.js";
import { PgMaintenanceStore } from "./db/pg-maintenance-store.js";
import { PgMembershipStore } from "./db/pg-membership-store.js";
import { PgMessageStore } from "./db/pg-message-store.js";
import { PgUsageStore } from "./db/pg-usage-store.js";
import { PgUserStore } from "./db/pg-user-store.js";
import { createPool, genericPlanPool } from "./db/pool.js";
import { Metrics } from "./http/metrics.js";
import { OfflineResponder } from "./llm/offline-responder.js";
import { OpenAiProvider } from "./llm/openai-provider.js";
import type { LlmProvider } from "./llm/types.js";
import { startMemory } from "./memory/memory-runtime.js";
import { PgVectorPurge, vectorPurger } from "./memory/vector-purge.js";
import { AnalyticsService } from "./analytics/analytics-service.js";
import { PgAnalyticsStore } from "./db/pg-analytics-store.js";
import { analyticsJob } from "./maintenance/analytics-job.js";
import { embeddingVersionsReadiness } from "./memory/embedding-version-readiness.js";
import { Reembedder } from "./memory/reembedder.js";
import { reembedMetrics } from "./memory/reembed-metrics.js";
import { reembedDueNow } from "./db/embedding-versions.js";
import { REEMBED_JOB, reembedJob } from "./maintenance/reembed-job.js";
import { archivalJob } from "./maintenance/archival-job.js";
import { maintenanceMetrics } from "./maintenance/maintenance-metrics.js";
import { retentionJob } from "./maintenance/retention-job.js";
import { MaintenanceScheduler } from "./maintenance/scheduler.js";
import { Router } from "./http/router.js";
import { registerApiDocs } from "./http/api-docs.js";
import { type ReadinessCheck, registerRoutes } from "./http/routes.js";
import { registerStaticFiles } from "./http/static-files.js";
import { protocolSchemas } from "./protocol/schemas.js";
import { createInFlight } from "./realtime/handlers.js";
import { createCoordination } from "./realtime/coordination.js";
import { SocketMemberEvents } from "./realtime/member-events.js";
import { attachChatNamespace, createSocketServer, socketRoomEvents } from "./realtime/socket-server.js";
import { userSockets } from "./realtime/user-sockets.js";

export interface RunningApp {
  /** Base URL the server listens on, e.g. http://127.0.0.1:3000 */
  url: string;
  port: number;
  profile: { database: "embedded" | "external" };
  pool: pg.Pool;
  /** Graceful: refuse new work, finish in-flight acks, close sockets, pool, embedded database. */
  stop(): Promise<void>;
}

export async function startApp(config: Config, log: Logger): Promise<RunningApp> {
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch((err) => log.warn({ err }, "cleanup step failed"));
  };
  try {
    let embedded: EmbeddedPostgresHandle | undefined;
    let databaseUrl = config.database.url;
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres({
        dataDir: path.join(config.dataDir, "pg"),
        port: config.database.embeddedPort,
        logger: log,
      });
      cleanups.push(() => embedded!.stop());
      databaseUrl = await embedded.ensureDatabase("memchat");
    }
    const pool = createPool(databaseUrl, config.database.poolSize, log, { idleTimeoutMs: config.database.poolIdleMs });
    cleanups.push(() => pool.end());
    const genericPlans = genericPlanPool(databaseUrl, config.database.poolSize, log, config.database.poolIdleMs);
    cleanups.push(() => genericPlans.end());
    await withStartupRetry(() => runMigrations(pool, log), log);
    const expectedVersion = await latestMigrationVersion();

    const metrics = new Metrics();
    const tokens = new TokenService(await loadJwtSecret(config.auth.jwtSecret, config.dataDir), config.auth.tokenTtlSeconds);
    const users = new PgUserStore(pool);
    const auth = new AuthService(users, tokens, config.auth.scryptN, config.auth.cacheMs, config.auth.adminUsernames);
    // ADMIN_USERNAMES also covers accounts that registered before their name was listed.
    const promoted = await users.grantAdmin(config.auth.adminUsernames);
    if (promoted > 0) log.info({ promoted }, "ADMIN_USERNAMES: accounts promoted to admin");
    const usernameOf = usernames(users);
    const schemas = protocolSchemas({ ...config.limits, maxAttachments: config.files.maxPerMessage });
    const inFlight = createInFlight();

    const router = new Router(log, metrics, config.limits.maxPayloadBytes, { corsOrigin: config.corsOrigin });
    const httpServer = http.createServer(router.handle);
    httpServer.keepAliveTimeout = 65_000; // longer than common load-balancer idle timeouts
    const coordination = await createCoordination(config, log);
    cleanups.push(() => coordination.stop());
    const rateLimits = new RateLimits(coordination.rateLimiter, config.rateLimits, log.child({ component: "rate-limits" }), (limit) =>
      metrics.rateLimited.inc({ limit }),
    );
    const io = createSocketServer(httpServer, config, rateLimits);
    coordination.attach(io);
    const rooms = socketRoomEvents(io);
    const members = new SocketMemberEvents(io, coordination.kind === "redis", log.child({ component: "members" }));
    const messageStore = new PgMessageStore(
      pool,
      { maxBatch: config.database.sendBatchMax, maxInFlight: config.database.sendBatchInFlight },
      {
        queued: (ms) => metrics.sendQueue.observe(ms / 1000),
        poolWait: (ms) => metrics.poolWait.observe({ use: "send" }, ms / 1000),
        statement: (ms) => metrics.sendStatement.observe(ms / 1000),
      },
    );

    const memoryRuntime = await startMemory(config, pool, genericPlans, databaseUrl, log, {
      onIndexed: (n, seconds) => {
        metrics.messagesIndexed.inc(n);
        metrics.indexBatchSeconds.observe(seconds);
      },
      onFailed: (n) => metrics.indexFailures.inc(n),
      onReused: (n) => metrics.indexReused.inc(n),
    });
    cleanups.push(() => memoryRuntime.stop());
    metrics.backlogSource = () => memoryRuntime.queue.backlog();
    metrics.passageBacklogSource = () => memoryRuntime.passageQueue.backlog();

    const llm: LlmProvider = config.llm.baseUrl
      ? new OpenAiProvider({
          baseURL: config.llm.baseUrl,
          apiKey: config.llm.apiKey,
          model: config.llm.model,
          connectTimeoutMs: config.llm.connectTimeoutMs,
          idleTimeoutMs: config.llm.idleTimeoutMs,
        })
      : new OfflineResponder({ tokenDelayMs: config.llm.offlineTokenDelayMs });
    if (!config.llm.baseUrl) log.warn("no OPENAI_BASE_URL: the offline responder answers (it quotes earlier messages)");
    const usageStore = new PgUsageStore(pool);
    const quota = new QuotaService(usageStore, config.quota);
    // A question sent with files waits (bounded) for them to be read before its reply gathers context.
    const attachmentReadiness = config.extract.readWaitMs > 0 ? new AttachmentReadiness(new PgPassageStore(pool), config.extract.readWaitMs) : undefined;
    const assistant = new AssistantService({
      store: new PgAssistantStore(pool, genericPlans),
      context: new ContextBuilder(memoryRuntime.memory, usernameOf, { search: memoryRuntime.passages, topK: config.extract.passageTopK }),
      llm,
      buffer: coordination.streamBuffer,
      cancelBus: coordination.cancelBus,
      rooms,
      nodeId: config.nodeId,
      log: log.child({ component: "assistant" }),
      opts: { ...config.assistant, defaultModel: config.llm.baseUrl ? config.llm.model : undefined },
      metrics: {
        onFirstToken: (s) => metrics.timeToFirstToken.observe(s),
        onTurnEnd: (status) => metrics.assistantTurns.inc({ status }),
        onTokens: (model, prompt, completion) => {
          metrics.llmTokens.inc({ model, kind: "prompt" }, prompt);
          metrics.llmTokens.inc({ model, kind: "completion" }, completion);
        },
      },
      onReplyStored: () => memoryRuntime.messageStored(),
      quota,
      passageContext: (userId, messageId) => memoryRuntime.passageQueries.contextOf(userId, messageId),
      ...(attachmentReadiness ? { attachmentsRead: (files: readonly { id: string; contentType: string }[], signal: AbortSignal) => attachmentReadiness.wait(files, signal) } : {}),
    });
    await assistant.start();

    const qdrantPurge = memoryRuntime.qdrantPurge;
    const lifecycleStore = new PgLifecycleStore(pool);
    const lifecycle = new LifecycleService({
      store: lifecycleStore,
      rooms,
      members,
      vectors: vectorPurger(lifecycleStore, qdrantPurge, config.lifecycle.batchSize),
      cancelReplies: (ids) => assistant.cancelReplies(ids),
      log: log.child({ component: "lifecycle" }),
      opts: config.lifecycle,
    });
    const fileStore = await openFileStore(config);
    cleanups.push(async () => fileStore.close());
    const attachmentStore = new PgAttachmentStore(pool);
    const attachments = new AttachmentService(
      attachmentStore,
      fileStore.store,
      config.files,
      log.child({ component: "attachments" }),
      attachmentMetrics(metrics.registry, () => attachmentStore),
    );
    // The assistant reads attachments: stored files are extracted into passages that the indexer embeds.
    const passageRunner = await startPassageRunner(config, pool, databaseUrl, fileStore.store, qdrantPurge ?? new PgVectorPurge(pool), () => memoryRuntime.messageStored(), log, metrics.registry, () => attachmentReadiness?.settled());
    cleanups.push(() => passageRunner.stop());
    const purgeFiles = () =>
      void attachments.purge().catch((err) => log.warn({ err: (err as Error).message }, "deleting stored files failed; the attachments job retries"));
    const chat = new ChatService({
      store: messageStore,
      membership: new PgMembershipStore(pool),
      presence: coordination.presence,
      rooms,
      members,
      limits: { historyPageSize: config.limits.historyPageSize, joinBacklogMax: config.limits.historyPageMax },
      assistant,
      onMessageStored: () => memoryRuntime.messageStored(),
      memory: memoryRuntime.memory,
      rateLimits,
      onSent: (message, reply) => lifecycle.messageStored(message, reply),
      // The session's rows are gone (committed): its stored files go now, not at the next sweep.
      onSessionDeleted: purgeFiles,
    });
    const configurations = new ConfigurationService({ store: new PgConfigurationStore(pool), rooms });
    attachChatNamespace(io, { config, log, metrics, inFlight, auth, chat, assistant, memory: memoryRuntime.memory, schemas, rateLimits, members, lifecycle, configurations });

    const analyticsStore = new PgAnalyticsStore(pool);
    // Periodic work, one node at a time across the cluster (src/maintenance/).
    let scheduler: MaintenanceScheduler | undefined;
    const onRun = maintenanceMetrics(metrics.registry, () => scheduler);
    if (config.maintenance.enabled) {
      scheduler = new MaintenanceScheduler(new PgMaintenanceStore(pool), { nodeId: config.nodeId, leaseMs: config.maintenance.leaseMs, onRun }, log.child({ component: "maintenance" }));
      if (config.lifecycle.archiveIdleDays !== undefined || config.lifecycle.sessionMaxMessages !== undefined) {
        scheduler.register(archivalJob(lifecycle, config.maintenance.intervalMs));
      }
      if (config.lifecycle.retentionArchivedDays !== undefined) scheduler.register(retentionJob(lifecycle, config.maintenance.intervalMs));
      scheduler.register(analyticsJob(analyticsStore, usageStore, { intervalMs: config.maintenance.intervalMs, retentionDays: config.analytics.retentionDays }));
      scheduler.register(attachmentsJob(attachments, config.files.sweepIntervalMs));
      if (memoryRuntime.versions) {
        const reembedder = new Reembedder(
          pool,
          memoryRuntime.versions,
          memoryRuntime.storeFor,
          { ...config.reembed, sliceMs: Math.min(30_000, config.maintenance.leaseMs / 2), dropBatchSize: config.lifecycle.batchSize },
          log.child({ component: "reembed" }),
          reembedMetrics(metrics.registry, pool),
        );
        scheduler.register(reembedJob(reembedder, Math.min(60_000, config.maintenance.intervalMs)));
        void memoryRuntime.registered
          .then((r) => (r?.kind === "building" ? reembedDueNow(pool, REEMBED_JOB).then(() => scheduler?.tick()) : undefined))
          .catch(() => undefined);
      }
      scheduler.start();
      const running = scheduler;
      cleanups.push(() => running.stop());
    }
    coordination.start(rooms, usernameOf);

    const readiness: ReadinessCheck[] = [
      {
        name: "database",
        critical: true,
        async check() {
          const v = await appliedMigrationVersion(pool);
          if (v < expectedVersion) throw new Error(`schema at version ${v}, expected ${expectedVersion}`);
          return `ok (schema ${v})`;
        },
      },
      {
        name: "embedder",
        critical: false,
        async check() {
          const status = memoryRuntime.embedderStatus();
          if (status.startsWith("unavailable")) throw new Error(`${status}; retrieval is lexical only and messages wait unindexed`);
          return status;
        },
      },
      {
        name: "indexer",
        critical: false,
        async check() {
          const ixs = memoryRuntime.indexers();
          if (ixs.length === 0) return config.indexer.enabled ? "waiting for the embedder" : "disabled";
          const failing = ixs.find((ix) => ix.stats.lastError);
          if (failing) throw new Error(`failing (${failing.stats.lastError}); messages wait and are retried`);
          return `ok, ${ixs.reduce((n, ix) => n + ix.stats.indexed, 0)} indexed by this node, store ${memoryRuntime.vectorStoreName}`;
        },
      },
      {
        name: "embedding versions",
        critical: false,
        check: () => embeddingVersionsReadiness(pool, memoryRuntime.versions),
      },
      ...coordination.readiness,
      { name: "files", critical: false, check: () => fileStore.store.check() },
      { name: "llm", critical: false, check: async () => (config.llm.baseUrl ? `${llm.name} (${config.llm.model})` : "offline responder (no OPENAI_BASE_URL)") },
    ];
    const account = new AccountService({
      pool,
      auth,
      vectors: memoryRuntime.purge,
      sockets: userSockets(io),
      members,
      cancelReplies: (ids) => assistant.cancelReplies(ids),
      log: log.child({ component: "account" }),
      authCacheMs: config.auth.cacheMs,
    });
    cleanups.push(async () => account.stop());
    // Deletions a stopped node (or a vector store outage) left half done: finished in the background.
    account.start();
    registerRoutes(router, {
      account,
      sessionList: new SessionList(pool),
      auth,
      chat,
      lifecycle,
      configurations,
      memory: memoryRuntime.memory,
      schemas,
      metrics,
      readiness,
      rateLimits,
      trustProxy: config.trustProxy,
      attachments,
      metricsToken: config.metricsToken,
      isDraining: () => inFlight.draining,
      analytics: new AnalyticsService(analyticsStore),
      quota,
    });
    registerStaticFiles(router);
    registerApiDocs(router, schemas, log);

    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(config.port, config.host, () => {
        httpServer.off("error", reject);
        resolve();
      });
    });
    const { port } = httpServer.address() as import("node:net").AddressInfo;
    const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    log.info({ url, database: embedded ? "embedded" : "external" }, "server listening");

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        log.info("shutting down: refusing new work");
        inFlight.draining = true;
        httpServer.close(); // stop accepting connections; open ones stay until io.close()
        const timeout = new Promise<void>((r) => setTimeout(r, config.shutdownTimeoutMs).unref());
        await Promise.race([inFlight.idle(), timeout]);
        if (inFlight.count > 0) log.warn({ inFlight: inFlight.count }, "shutdown timeout with requests in flight");
        // Replies still streaming end as interrupted (kept, regenerable) and their rooms are told.
        await assistant.stop().catch((err) => log.warn({ err }, "stopping assistant turns failed"));
        io.disconnectSockets(true);
        // io.close() waits for the HTTP server to close, which waits for every
        // keep-alive connection: close those ourselves instead of for their timeout.
        const httpClosed = new Promise<void>((r) => httpServer.once("close", () => r()));
        void io.close();
        httpServer.closeAllConnections();
        await Promise.race([httpClosed, new Promise<void>((r) => setTimeout(r, 2_000).unref())]);
        await cleanup();
        log.info("shutdown complete");
      })());

    return { url, port, profile: { database: embedded ? "embedded" : "external" }, pool, stop };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Usernames for presence events of users this node has not seen (bounded cache; names never change). */
/** At start-up the database may still be booting (docker-compose): retry for a while. */
async function withStartupRetry<T>(fn: () => Promise<T>, log: Logger, attempts = 30): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !isDatabaseUnavailable(err)) throw err;
      log.warn({ attempt: i, err: (err as Error).message }, "database not reachable yet, retrying");
      await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** i, 2_000)));
    }
  }
}
