/**
 * Child-process probe for TransformersEmbedder: loads the model in two
 * embedders, embeds with both, closes one and leaves the other's idle pool
 * open. The process must then exit by itself; a test that waits for the exit
 * catches worker handles or timers that keep it alive.
 * Usage: node --import tsx test/support/embedder-exit-probe.ts <modelDir>
 */
import { TransformersEmbedder } from "../../src/memory/transformers-embedder.js";

const modelDir = process.argv[2];
if (!modelDir) {
  console.error("usage: embedder-exit-probe.ts <modelDir>");
  process.exit(2);
}
const [closed, idle] = await Promise.all([
  TransformersEmbedder.create({ modelPath: modelDir, poolSize: 1, model: "probe-closed" }),
  TransformersEmbedder.create({ modelPath: modelDir, poolSize: 1, model: "probe-idle" }),
]);
const [[a], [b]] = await Promise.all([closed.embed(["does this process exit?"]), idle.embed(["does this process exit?"])]);
await closed.close();
console.log(JSON.stringify({ dimensions: [a?.length, b?.length], closed: closed.stats(), idle: idle.stats() }));
