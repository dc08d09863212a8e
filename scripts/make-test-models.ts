/**
 * Generates the BERT-shaped test models (tiny and full all-MiniLM-L6-v2 shape)
 * under .cache/models if they are missing, and prints where they are.
 * Usage: npx tsx scripts/make-test-models.ts [tiny|full]...
 */
import { ensureFullModel, ensureTinyModel } from "../test/support/test-models.js";

const which = process.argv.slice(2);
const wanted = which.length === 0 ? ["tiny", "full"] : which;
for (const name of wanted) {
  if (name !== "tiny" && name !== "full") {
    console.error(`unknown model "${name}" (expected tiny or full)`);
    process.exit(2);
  }
}
for (const name of wanted) {
  const started = performance.now();
  const dir = name === "tiny" ? await ensureTinyModel() : await ensureFullModel();
  console.log(`${name}\t${dir}\t(${Math.round(performance.now() - started)} ms)`);
}
