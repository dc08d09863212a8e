/**
 * Worker-thread entry of TransformersEmbedder: loads one feature-extraction
 * pipeline and embeds the batches the pool sends it, one at a time. Runs only
 * as a worker (started by transformers-embedder.ts), never imported by the app.
 */
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { groupByLength } from "./length-groups.js";

export type TransformersDtype = "fp32" | "fp16" | "q8" | "int8" | "uint8" | "q4" | "q4f16" | "bnb4";

export interface WorkerInit {
  /** Hub model id, used when `localDir` is undefined. */
  modelId: string;
  /** Absolute path of a folder in the hub layout (config.json, tokenizer files, onnx/). */
  localDir: string | undefined;
  allowRemoteModels: boolean;
  cacheDir: string | undefined;
  dtype: TransformersDtype;
  /** onnxruntime intra-op threads of this worker's session. */
  threads: number;
  /** Nice value for this thread (and the inference threads it starts); 0 leaves it alone. */
  nice?: number;
}

export type ToWorker = { type: "embed"; id: number; texts: string[] } | { type: "close" };

export type FromWorker =
  | { type: "ready"; dimensions: number }
  | { type: "load-error"; message: string }
  | { type: "result"; id: number; data: Float32Array; dimensions: number }
  | { type: "embed-error"; id: number; message: string }
  | { type: "closed" };

type Extractor = (
  texts: string[],
  options: { pooling: "mean"; normalize: boolean },
) => Promise<{ data: ArrayLike<number>; dims: number[] }>;

const port = parentPort;
if (!port) throw new Error("transformers-worker.ts must run as a worker thread");
const init = workerData as WorkerInit;
// On Linux, setpriority(PRIO_PROCESS, 0) changes the calling thread only, and
// threads inherit their creator's value: so this worker and the onnxruntime
// threads it starts yield the CPU to the event loop and PostgreSQL, and
// embedding a backlog does not slow acks down. Elsewhere it may apply to the
// whole process, so it is done only on Linux.
if (init.nice && process.platform === "linux") {
  try {
    os.setPriority(0, init.nice);
  } catch {
    // not permitted here: run at normal priority
  }
}
const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

let extractor: Extractor | undefined;
let dispose: (() => Promise<unknown>) | undefined;
// Batches run one after another; the pool sends one at a time, the chain makes that a guarantee.
let chain: Promise<void> = Promise.resolve();

port.on("message", (message: ToWorker) => {
  chain = chain.then(() => handle(message));
});

async function handle(message: ToWorker): Promise<void> {
  if (message.type === "close") {
    await dispose?.().catch(() => undefined);
    post({ type: "closed" });
    port!.close();
    return;
  }
  try {
    if (!extractor) throw new Error("model is not loaded");
    const texts = message.texts;
    let data: Float32Array<ArrayBuffer> | undefined;
    let dimensions = 0;
    // Padding to the longest text is the main waste in mixed chat traffic; similar lengths run together.
    for (const group of groupByLength(texts, { maxGroup: texts.length })) {
      const output = await extractor(
        group.map((i) => texts[i]!),
        { pooling: "mean", normalize: true },
      );
      dimensions = output.dims[output.dims.length - 1] ?? 0;
      const values = output.data instanceof Float32Array ? output.data : Float32Array.from(output.data);
      if (values.length !== group.length * dimensions) throw new Error("model output does not match its input");
      const into = (data ??= new Float32Array(texts.length * dimensions));
      group.forEach((target, k) => into.set(values.subarray(k * dimensions, (k + 1) * dimensions), target * dimensions));
    }
    data ??= new Float32Array(0);
    post({ type: "result", id: message.id, data, dimensions }, [data.buffer]);
  } catch (err) {
    post({ type: "embed-error", id: message.id, message: errorMessage(err) });
  }
}

async function load(): Promise<void> {
  const where = init.localDir ?? `the model hub (${init.modelId})`;
  try {
    if (init.localDir) checkLocalFolder(init.localDir, init.dtype);
    const transformers = await import("@huggingface/transformers");
    const { env } = transformers;
    // Missing-file warnings would duplicate the error this worker reports.
    env.logLevel = transformers.LogLevel.ERROR;
    let id = init.modelId;
    if (init.localDir) {
      env.allowLocalModels = true;
      env.allowRemoteModels = false;
      const base = path.basename(init.localDir);
      // transformers.js resolves a valid hub-style id under localModelPath and takes anything
      // else as a path as it stands; absolute paths are never valid ids.
      if (/^\b[\w\-.]{1,96}\b$/.test(base) && !base.includes("..") && !base.includes("--")) {
        env.localModelPath = path.dirname(init.localDir);
        id = base;
      } else {
        id = init.localDir;
      }
    } else {
      env.allowLocalModels = false;
      env.allowRemoteModels = init.allowRemoteModels;
    }
    if (init.cacheDir) env.cacheDir = init.cacheDir;
    const pipe = await transformers.pipeline("feature-extraction", id, {
      dtype: init.dtype,
      device: "cpu",
      session_options: { intraOpNumThreads: init.threads, interOpNumThreads: 1 },
    });
    extractor = pipe as unknown as Extractor;
    dispose = () => pipe.dispose();
    // One real inference proves the graph runs and tells the pool the vector width.
    const probe = await extractor(["warm-up"], { pooling: "mean", normalize: true });
    const dimensions = probe.dims[probe.dims.length - 1] ?? 0;
    post({ type: "ready", dimensions });
  } catch (err) {
    post({ type: "load-error", message: `cannot load embedding model from ${where} (dtype ${init.dtype}): ${errorMessage(err)}` });
  }
}

/** Fails early with the missing file's name instead of the library's generic lookup error. */
function checkLocalFolder(dir: string, dtype: TransformersDtype): void {
  if (!existsSync(dir)) throw new Error(`folder ${dir} does not exist`);
  const suffix: Record<TransformersDtype, string> = {
    fp32: "",
    fp16: "_fp16",
    q8: "_quantized",
    int8: "_int8",
    uint8: "_uint8",
    q4: "_q4",
    q4f16: "_q4f16",
    bnb4: "_bnb4",
  };
  for (const file of ["config.json", "tokenizer.json", "tokenizer_config.json", `onnx/model${suffix[dtype]}.onnx`]) {
    if (!existsSync(path.join(dir, file))) throw new Error(`${path.join(dir, file)} is missing`);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

chain = chain.then(load);
