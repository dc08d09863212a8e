/**
 * Recall@5 and recall@10 of lexical, vector and hybrid retrieval through the
 * server's search path (memory:search on a running server), on the evaluation
 * set in bench/data/retrieval-eval.json.
 *
 * Usage: npm run bench:retrieval [-- --embedders hash,minilm-shape]
 *   hash          the feature-hashing embedder (EMBEDDER=hash)
 *   minilm-shape  transformers.js on a model of all-MiniLM-L6-v2's exact shape
 *                 with random weights (no real weights can be downloaded here)
 *   model:<dir>   transformers.js on a real model folder, e.g. all-MiniLM-L6-v2
 */
import { readFile } from "node:fs/promises";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect, ok, register } from "../test/support/client.js";
import { startServer } from "../test/support/server-process.js";
import { ensureFullModel } from "../test/support/test-models.js";
import { table } from "./lib.js";

interface EvalSet {
  sessions: Record<string, string[]>;
  questions: { q: string; answers: [string, number][] }[];
}

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const embedders = arg("embedders", "hash,minilm-shape").split(",");
const data = JSON.parse(await readFile(fileURLToPath(new URL("./data/retrieval-eval.json", import.meta.url)), "utf8")) as EvalSet;

async function envFor(embedder: string): Promise<Record<string, string>> {
  if (embedder === "hash") return { EMBEDDER: "hash" };
  if (embedder === "minilm-shape") return { EMBEDDER: "transformers", EMBEDDING_MODEL_PATH: await ensureFullModel(), EMBEDDING_MODEL_ID: "memchat/minilm-shape-random", EMBEDDING_DTYPE: "fp32" };
  if (embedder.startsWith("model:")) return { EMBEDDER: "transformers", EMBEDDING_MODEL_PATH: embedder.slice(6) };
  throw new Error(`unknown embedder ${embedder}`);
}

const rows: (string | number)[][] = [];
for (const embedder of embedders) {
  const dataDir = await mkdtemp(path.join(tmpdir(), "memchat-eval-"));
  const server = await startServer({ DATA_DIR: dataDir, RATE_LIMITS_ENABLED: "false", INDEXER_POLL_MS: "100", MEMORY_MIN_SIMILARITY: "-1", ...(await envFor(embedder)) }, 180_000);
  try {
    const user = await register(server.url);
    const socket = await connect(server.url, user.token);
    const ids = new Map<string, number>();
    for (const [key, messages] of Object.entries(data.sessions)) {
      const { session } = await ok(socket, "session:create", { title: key, assistant: false });
      for (const [i, content] of messages.entries()) {
        const { message } = await ok(socket, "message:send", { sessionId: session.id, clientMessageId: `${key}-${i}`, content });
        ids.set(`${key}:${i}`, message.id);
      }
    }
    // Wait for the indexer: vector retrieval needs every message embedded.
    for (let i = 0; ; i++) {
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      if (/^chat_index_backlog 0$/m.test(metrics)) break;
      if (i > 1200) throw new Error("indexing did not finish");
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const mode of ["lexical", "vector", "hybrid"] as const) {
      let r5 = 0;
      let r10 = 0;
      for (const q of data.questions) {
        const { hits } = await ok(socket, "memory:search", { query: q.q, mode, limit: 10 });
        const got = hits.map((h: { messageId: number }) => h.messageId);
        const want = q.answers.map(([k, i]) => ids.get(`${k}:${i}`)!);
        r5 += want.filter((id) => got.slice(0, 5).includes(id)).length / want.length;
        r10 += want.filter((id) => got.includes(id)).length / want.length;
      }
      rows.push([embedder, mode, r5 / data.questions.length, r10 / data.questions.length]);
    }
    socket.close();
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const nMessages = Object.values(data.sessions).reduce((n, s) => n + s.length, 0);
console.log(`\nretrieval evaluation: ${data.questions.length} questions over ${nMessages} messages in ${Object.keys(data.sessions).length} sessions, searched across all of the user's sessions\n`);
console.log(table(["embedder", "mode", "recall@5", "recall@10"], rows));
