/**
 * BERT-shaped ONNX models generated on this machine, standing in for the model hub
 * (DESIGN.md section 8): they are loaded through the real transformers.js pipeline
 * from a local folder in the hub layout, with the real all-MiniLM-L6-v2 tokenizer.
 *
 * Two models, both with seeded random weights (so their vectors carry no meaning,
 * only the model's shape and compute are real):
 *  - tiny: hidden 384 (so vectors have the production dimension), 2 layers, a
 *    factorised word embedding; fast enough for unit tests.
 *  - full: exactly all-MiniLM-L6-v2's shape, for benchmarks of real compute.
 *
 * Each folder holds onnx/model.onnx (fp32, what dtype "fp32" asks for) and
 * onnx/model_quantized.onnx (what dtype "q8" asks for): a dynamically quantized
 * graph (uint8 weights, DynamicQuantizeLinear + MatMulInteger, dequantized
 * embedding gathers), the same op pattern as the hub's quantized export, so the
 * production default (q8) runs the same kind of kernels in tests and benchmarks.
 * LayerNorm and GELU are written out the way exporters emit them; onnxruntime
 * fuses them (LayerNormalization, BiasGelu/Gelu, DynamicQuantizeMatMul,
 * MatMulIntegerToFloat) as it does for a real export.
 *
 * Folders are generated under <repo>/.cache/models only when missing, into a
 * temporary folder renamed into place, so concurrent test processes never see a
 * half-written model.
 */
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import onnxProto, { type onnx as Onnx } from "onnx-proto";

const { onnx } = onnxProto;

/** Bump when the generated graphs or weights change, so stale caches are not reused. */
const GENERATOR_VERSION = 1;

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "config.json"];

export interface TestModelSpec {
  name: string;
  seed: number;
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  maxPositions: number;
  typeVocabSize: number;
  /** Width of a factorised word embedding (vocab x E, then E x hidden); undefined for a full table. */
  embeddingFactor?: number;
  /** Standard deviation of the random weights. */
  initStd: number;
}

export const TINY_MODEL_SPEC: TestModelSpec = {
  name: "memchat-test-tiny-bert",
  seed: 0x5eed_0001,
  vocabSize: 30522,
  hidden: 384,
  layers: 2,
  heads: 12,
  intermediate: 512,
  maxPositions: 512,
  typeVocabSize: 2,
  embeddingFactor: 32,
  // Larger than BERT's 0.02 so attention is far from uniform and context visibly matters.
  initStd: 0.05,
};

export const FULL_MODEL_SPEC: TestModelSpec = {
  name: "memchat-test-minilm-shape",
  seed: 0x5eed_0002,
  vocabSize: 30522,
  hidden: 384,
  layers: 6,
  heads: 12,
  intermediate: 1536,
  maxPositions: 512,
  typeVocabSize: 2,
  initStd: 0.02,
};

/**
 * Where the tokenizer and config of the real model are kept: the shared/
 * folder beside the checkout (as CI lays it out), unless MEMCHAT_TOKENIZER_DIR says otherwise.
 */
export function tokenizerSourceDir(): string {
  if (process.env.MEMCHAT_TOKENIZER_DIR) return process.env.MEMCHAT_TOKENIZER_DIR;
  const beside = path.join(repoRoot(), "..", "shared", "models", "Xenova", "all-MiniLM-L6-v2");
  return existsSync(beside) ? beside : "/work/shared/models/Xenova/all-MiniLM-L6-v2";
}

export function modelCacheRoot(): string {
  return path.join(repoRoot(), ".cache", "models");
}

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

const inFlight = new Map<string, Promise<string>>();

/** Generates the model folder for a spec if it is missing; returns its path. */
export function ensureTestModel(spec: TestModelSpec): Promise<string> {
  const dir = path.join(modelCacheRoot(), `${spec.name}-v${GENERATOR_VERSION}`);
  let pending = inFlight.get(dir);
  if (!pending) {
    pending = generateIfMissing(spec, dir);
    inFlight.set(dir, pending);
    pending.catch(() => inFlight.delete(dir));
  }
  return pending;
}

export function ensureTinyModel(): Promise<string> {
  return ensureTestModel(TINY_MODEL_SPEC);
}

export function ensureFullModel(): Promise<string> {
  return ensureTestModel(FULL_MODEL_SPEC);
}

export async function ensureTestModels(): Promise<{ tinyDir: string; fullDir: string }> {
  const tinyDir = await ensureTinyModel();
  const fullDir = await ensureFullModel();
  return { tinyDir, fullDir };
}

async function generateIfMissing(spec: TestModelSpec, dir: string): Promise<string> {
  if (existsSync(path.join(dir, "onnx", "model_quantized.onnx"))) return dir;
  const source = tokenizerSourceDir();
  for (const file of TOKENIZER_FILES) {
    if (!existsSync(path.join(source, file))) {
      throw new Error(
        `cannot generate test model ${spec.name}: ${path.join(source, file)} is missing ` +
          `(set MEMCHAT_TOKENIZER_DIR to a folder holding the all-MiniLM-L6-v2 tokenizer files)`,
      );
    }
  }
  const parent = path.dirname(dir);
  await mkdir(parent, { recursive: true });
  const tmp = path.join(parent, `.tmp-${path.basename(dir)}-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    await mkdir(path.join(tmp, "onnx"), { recursive: true });
    for (const file of TOKENIZER_FILES) {
      if (file === "config.json") continue;
      await copyFile(path.join(source, file), path.join(tmp, file));
      // The source may be read-only; the cache must stay deletable and regenerable.
      await chmod(path.join(tmp, file), 0o644);
    }
    const config = JSON.parse(await readFile(path.join(source, "config.json"), "utf8")) as Record<string, unknown>;
    await writeFile(path.join(tmp, "config.json"), JSON.stringify(describeConfig(config, spec), null, 2) + "\n");

    const weights = makeWeights(spec);
    await writeFile(path.join(tmp, "onnx", "model.onnx"), buildModel(spec, weights, false));
    await writeFile(path.join(tmp, "onnx", "model_quantized.onnx"), buildModel(spec, weights, true));
    await writeFile(
      path.join(tmp, "memchat-test-model.json"),
      JSON.stringify({ generatorVersion: GENERATOR_VERSION, ...spec, note: "seeded random weights; vectors carry no meaning" }, null, 2) + "\n",
    );
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another process finished the same model first; its copy is identical.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !existsSync(path.join(dir, "onnx", "model_quantized.onnx"))) throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** The real config, with the fields that differ for this model made true. */
function describeConfig(config: Record<string, unknown>, spec: TestModelSpec): Record<string, unknown> {
  return {
    ...config,
    _name_or_path: `memchat/${spec.name}`,
    hidden_size: spec.hidden,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    intermediate_size: spec.intermediate,
    max_position_embeddings: spec.maxPositions,
    vocab_size: spec.vocabSize,
    type_vocab_size: spec.typeVocabSize,
    ...(spec.embeddingFactor ? { embedding_size: spec.embeddingFactor } : {}),
  };
}

// ---------------------------------------------------------------------------
// Weights

interface LayerWeights {
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  ln1: Norm;
  ff1: Linear;
  ff2: Linear;
  ln2: Norm;
}
interface Linear {
  w: Float32Array; // [in, out], row-major
  b: Float32Array | undefined;
  inDim: number;
  outDim: number;
}
interface Norm {
  gamma: Float32Array;
  beta: Float32Array;
}
interface ModelWeights {
  word: Float32Array; // [vocab, factor ?? hidden]
  wordProjection: Linear | undefined;
  position: Float32Array; // [maxPositions, hidden]
  tokenType: Float32Array; // [typeVocab, hidden]
  embNorm: Norm;
  layers: LayerWeights[];
}

/** mulberry32 with a Box-Muller normal on top: fast, seeded, identical on every machine. */
class Rng {
  private state: number;
  private spare: number | undefined;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = 1 - this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  fill(n: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * std;
    return out;
  }
}

function makeWeights(spec: TestModelSpec): ModelWeights {
  const rng = new Rng(spec.seed);
  const h = spec.hidden;
  const linear = (inDim: number, outDim: number, bias = true): Linear => ({
    w: rng.fill(inDim * outDim, spec.initStd),
    b: bias ? rng.fill(outDim, spec.initStd) : undefined,
    inDim,
    outDim,
  });
  const norm = (): Norm => {
    const gamma = rng.fill(h, 0.05);
    for (let i = 0; i < h; i++) gamma[i] = 1 + gamma[i]!;
    return { gamma, beta: rng.fill(h, 0.05) };
  };
  const wordWidth = spec.embeddingFactor ?? h;
  // Embedding rows get unit-ish scale: they are summed and layer-normalised straight away.
  const word = rng.fill(spec.vocabSize * wordWidth, 1);
  const wordProjection = spec.embeddingFactor ? linear(spec.embeddingFactor, h, false) : undefined;
  if (wordProjection) {
    // Keeps the projected word vectors on the same scale as the position and type rows.
    const scale = 1 / (spec.initStd * Math.sqrt(spec.embeddingFactor!));
    for (let i = 0; i < wordProjection.w.length; i++) wordProjection.w[i]! *= scale;
  }
  const position = rng.fill(spec.maxPositions * h, 0.5);
  const tokenType = rng.fill(spec.typeVocabSize * h, 0.5);
  const embNorm = norm();
  const layers: LayerWeights[] = [];
  for (let l = 0; l < spec.layers; l++) {
    layers.push({
      q: linear(h, h),
      k: linear(h, h),
      v: linear(h, h),
      o: linear(h, h),
      ln1: norm(),
      ff1: linear(h, spec.intermediate),
      ff2: linear(spec.intermediate, h),
      ln2: norm(),
    });
  }
  return { word, wordProjection, position, tokenType, embNorm, layers };
}

// ---------------------------------------------------------------------------
// Graph

const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;
const LITTLE_ENDIAN = os.endianness() === "LE";

function bytesOf(view: Float32Array | BigInt64Array | Uint8Array): Uint8Array {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  if (LITTLE_ENDIAN || view.BYTES_PER_ELEMENT === 1) return bytes;
  // ONNX raw_data is little-endian whatever the host.
  const out = new Uint8Array(bytes.length);
  const w = view.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += w) for (let j = 0; j < w; j++) out[i + j] = bytes[i + w - 1 - j]!;
  return out;
}

type Attr = number | number[] | { f: number };

class GraphBuilder {
  readonly nodes: Onnx.INodeProto[] = [];
  readonly initializers: Onnx.ITensorProto[] = [];
  private counter = 0;

  tensor(name: string, dataType: number, dims: number[], data: Float32Array | BigInt64Array | Uint8Array): string {
    this.initializers.push({ name, dataType, dims, rawData: bytesOf(data) });
    return name;
  }
  float(name: string, dims: number[], data: Float32Array): string {
    return this.tensor(name, T.FLOAT, dims, data);
  }
  scalar(name: string, value: number): string {
    return this.float(name, [], Float32Array.of(value));
  }
  int64(name: string, values: number[], dims: number[] = [values.length]): string {
    return this.tensor(name, T.INT64, dims, BigInt64Array.from(values.map(BigInt)));
  }

  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs = 1): string[] {
    const id = `${opType}_${this.counter++}`;
    const outNames = Array.from({ length: outputs }, (_, i) => (outputs === 1 ? id : `${id}_${i}`));
    const attribute: Onnx.IAttributeProto[] = Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v)
        ? { name, type: A.INTS, ints: v }
        : typeof v === "number"
          ? { name, type: A.INT, i: v }
          : { name, type: A.FLOAT, f: v.f },
    );
    this.nodes.push({ name: id, opType, input: inputs, output: outNames, attribute });
    return outNames;
  }
  one(opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.op(opType, inputs, attrs)[0]!;
  }
}

interface QuantizedTensor {
  data: Uint8Array;
  scale: number;
  zeroPoint: number;
}

/** Asymmetric per-tensor uint8, as onnxruntime's dynamic quantizer does for U8U8. */
function quantizeUint8(values: Float32Array): QuantizedTensor {
  let min = 0;
  let max = 0;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const scale = (max - min) / 255 || 1;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-min / scale)));
  const data = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    data[i] = Math.min(255, Math.max(0, Math.round(values[i]! / scale) + zeroPoint));
  }
  return { data, scale, zeroPoint };
}

function buildModel(spec: TestModelSpec, weights: ModelWeights, quantized: boolean): Uint8Array {
  const g = new GraphBuilder();
  const h = spec.hidden;
  const headDim = h / spec.heads;

  const embedding = (name: string, table: Float32Array, width: number, rows: number, ids: string): string => {
    if (!quantized) return g.one("Gather", [g.float(name, [rows, width], table), ids]);
    const q = quantizeUint8(table);
    const gathered = g.one("Gather", [g.tensor(`${name}_quantized`, T.UINT8, [rows, width], q.data), ids]);
    return g.one("DequantizeLinear", [
      gathered,
      g.scalar(`${name}_scale`, q.scale),
      g.tensor(`${name}_zero_point`, T.UINT8, [], Uint8Array.of(q.zeroPoint)),
    ]);
  };

  const linear = (name: string, x: string, lin: Linear): string => {
    let y: string;
    if (!quantized) {
      y = g.one("MatMul", [x, g.float(`${name}.weight`, [lin.inDim, lin.outDim], lin.w)]);
    } else {
      const q = quantizeUint8(lin.w);
      const [xq, xScale, xZero] = g.op("DynamicQuantizeLinear", [x], {}, 3) as [string, string, string];
      const acc = g.one("MatMulInteger", [
        xq,
        g.tensor(`${name}.weight_quantized`, T.UINT8, [lin.inDim, lin.outDim], q.data),
        xZero,
        g.tensor(`${name}.weight_zero_point`, T.UINT8, [], Uint8Array.of(q.zeroPoint)),
      ]);
      const scale = g.one("Mul", [xScale, g.scalar(`${name}.weight_scale`, q.scale)]);
      y = g.one("Mul", [g.one("Cast", [acc], { to: T.FLOAT }), scale]);
    }
    return lin.b ? g.one("Add", [y, g.float(`${name}.bias`, [lin.outDim], lin.b)]) : y;
  };

  const eps = g.scalar("layer_norm_eps", 1e-12);
  const two = g.scalar("const_two", 2);
  const layerNorm = (name: string, x: string, n: Norm): string => {
    const mean = g.one("ReduceMean", [x], { axes: [-1], keepdims: 1 });
    const centred = g.one("Sub", [x, mean]);
    const variance = g.one("ReduceMean", [g.one("Pow", [centred, two])], { axes: [-1], keepdims: 1 });
    const normed = g.one("Div", [centred, g.one("Sqrt", [g.one("Add", [variance, eps])])]);
    return g.one("Add", [
      g.one("Mul", [normed, g.float(`${name}.gamma`, [h], n.gamma)]),
      g.float(`${name}.beta`, [h], n.beta),
    ]);
  };

  // Embeddings: word + position + token type, then LayerNorm.
  const wordWidth = spec.embeddingFactor ?? h;
  let word = embedding("embeddings.word", weights.word, wordWidth, spec.vocabSize, "input_ids");
  if (weights.wordProjection) word = linear("embeddings.word_projection", word, weights.wordProjection);
  const seqLen = g.one("Gather", [g.one("Shape", ["input_ids"]), g.int64("const_i1", [1], [])], { axis: 0 });
  const positionIds = g.one("Range", [g.int64("const_i0", [0], []), seqLen, "const_i1"]);
  const position = embedding("embeddings.position", weights.position, h, spec.maxPositions, positionIds);
  const tokenType = embedding("embeddings.token_type", weights.tokenType, h, spec.typeVocabSize, "token_type_ids");
  let x = layerNorm("embeddings.norm", g.one("Add", [g.one("Add", [word, position]), tokenType]), weights.embNorm);

  // Padding keys get a large negative score, as in BERT's extended attention mask.
  const maskF = g.one("Cast", [g.one("Unsqueeze", ["attention_mask", g.int64("mask_axes", [1, 2])])], { to: T.FLOAT });
  const maskBias = g.one("Mul", [g.one("Sub", [g.scalar("const_one", 1), maskF]), g.scalar("mask_value", -10000)]);

  const splitHeads = g.int64("split_heads_shape", [0, 0, spec.heads, headDim]);
  const mergeHeads = g.int64("merge_heads_shape", [0, 0, h]);
  const scoreScale = g.scalar("attention_scale", Math.sqrt(headDim));
  const sqrt2 = g.scalar("const_sqrt2", Math.SQRT2);
  const half = g.scalar("const_half", 0.5);

  weights.layers.forEach((lw, l) => {
    const p = `encoder.layer.${l}`;
    const heads = (name: string, lin: Linear, perm: number[]) =>
      g.one("Transpose", [g.one("Reshape", [linear(`${p}.${name}`, x, lin), splitHeads])], { perm });
    const q = heads("attention.query", lw.q, [0, 2, 1, 3]);
    const k = heads("attention.key", lw.k, [0, 2, 3, 1]);
    const v = heads("attention.value", lw.v, [0, 2, 1, 3]);
    const scores = g.one("Add", [g.one("Div", [g.one("MatMul", [q, k]), scoreScale]), maskBias]);
    const probs = g.one("Softmax", [scores], { axis: -1 });
    const context = g.one("Reshape", [
      g.one("Transpose", [g.one("MatMul", [probs, v])], { perm: [0, 2, 1, 3] }),
      mergeHeads,
    ]);
    const attended = linear(`${p}.attention.output`, context, lw.o);
    x = layerNorm(`${p}.attention.norm`, g.one("Add", [attended, x]), lw.ln1);

    const inner = linear(`${p}.intermediate`, x, lw.ff1);
    // Exact GELU, in the form exporters emit.
    const gelu = g.one("Mul", [
      g.one("Mul", [inner, g.one("Add", [g.one("Erf", [g.one("Div", [inner, sqrt2])]), "const_one"])]),
      half,
    ]);
    const out = linear(`${p}.output`, gelu, lw.ff2);
    x = layerNorm(`${p}.output.norm`, g.one("Add", [out, x]), lw.ln2);
  });
  g.nodes.push({ name: "output", opType: "Identity", input: [x], output: ["last_hidden_state"] });

  const tokens = (name: string): Onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: T.INT64, shape: { dim: [{ dimParam: "batch_size" }, { dimParam: "sequence_length" }] } } },
  });
  const model: Onnx.IModelProto = {
    irVersion: 8,
    producerName: "memchat-test-models",
    producerVersion: String(GENERATOR_VERSION),
    opsetImport: [{ domain: "", version: 14 }],
    graph: {
      name: spec.name,
      node: g.nodes,
      initializer: g.initializers,
      input: [tokens("input_ids"), tokens("attention_mask"), tokens("token_type_ids")],
      output: [
        {
          name: "last_hidden_state",
          type: {
            tensorType: {
              elemType: T.FLOAT,
              shape: { dim: [{ dimParam: "batch_size" }, { dimParam: "sequence_length" }, { dimValue: h }] },
            },
          },
        },
      ],
    },
  };
  return onnx.ModelProto.encode(model).finish();
}
