/** k6/metrics: custom metrics are declared in init code (once per VU) and added to in VU code. */
import type { MetricDecl, MetricType } from "../protocol.js";
import { sample, vu } from "../vu-channel.js";

export const declared = new Map<string, MetricDecl>();

// k6's rule for metric names (v0.48): letters, digits and a few symbols, at most 128.
const NAME = /^[\p{L}\p{N}._ !?/&#()<>%-]{1,128}$/u;

function toTags(tags: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (tags && typeof tags === "object") for (const [k, v] of Object.entries(tags)) out[k] = String(v);
  return out;
}

abstract class Metric {
  readonly name: string;
  readonly type: MetricType;
  readonly isTime: boolean;

  constructor(name: string, type: MetricType, isTime: unknown) {
    if (vu.phase !== "init") throw new Error("metrics must be declared in the init context");
    if (typeof name !== "string" || !NAME.test(name)) throw new Error(`invalid metric name: '${String(name)}'`);
    const prior = declared.get(name);
    if (prior && prior.type !== type) throw new Error(`metric '${name}' already registered with type ${prior.type}`);
    this.name = name;
    this.type = type;
    this.isTime = isTime === true;
    declared.set(name, { name, type, isTime: this.isTime });
  }

  protected value(v: unknown): number {
    return Number(v);
  }

  add(value: unknown, tags?: unknown): boolean {
    if (vu.phase === "init") throw new Error("metric add() can't be called in the init context");
    const v = this.value(value);
    if (Number.isNaN(v)) throw new Error(`'${String(value)}' is an invalid value for metric '${this.name}', a number or a boolean value is expected`);
    sample({ metric: this.name, value: v, tags: toTags(tags) });
    return true;
  }
}

export class Counter extends Metric {
  constructor(name: string, isTime?: boolean) {
    super(name, "counter", isTime);
  }
}

export class Gauge extends Metric {
  constructor(name: string, isTime?: boolean) {
    super(name, "gauge", isTime);
  }
}

export class Trend extends Metric {
  constructor(name: string, isTime?: boolean) {
    super(name, "trend", isTime);
  }
}

export class Rate extends Metric {
  constructor(name: string, isTime?: boolean) {
    super(name, "rate", isTime);
  }

  protected override value(v: unknown): number {
    if (typeof v === "boolean") return v ? 1 : 0;
    const n = Number(v);
    return Number.isNaN(n) ? n : n !== 0 ? 1 : 0;
  }
}

export default { Counter, Gauge, Rate, Trend };
