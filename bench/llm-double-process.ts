/**
 * The OpenAI-compatible test double in a process of its own, so benchmark
 * clients and the "LLM" do not share an event loop. Prints its URL as JSON.
 * Usage: node --import tsx bench/llm-double-process.ts <tokens> <tokenDelayMs>
 */
import { OpenAiLlmDouble } from "../test/support/openai-llm-double.js";

const n = Number(process.argv[2] ?? 20);
const delay = Number(process.argv[3] ?? 20);
const double = new OpenAiLlmDouble({ defaultScript: { tokens: Array.from({ length: n }, (_, i) => ` word${i}`), tokenDelayMs: delay } });
const { url } = await double.start();
console.log(JSON.stringify({ url }));
process.on("SIGTERM", () => void double.close().then(() => process.exit(0)));
