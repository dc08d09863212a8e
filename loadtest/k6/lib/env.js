/**
 * Settings from `k6 run -e NAME=value` (k6 also passes the process
 * environment through __ENV unless --include-system-env-vars=false). A bad
 * value stops the run at init instead of quietly load-testing something else.
 */

function raw(name) {
  const v = __ENV[name];
  return v === undefined || v === "" ? undefined : String(v).trim();
}

export function str(name, fallback) {
  const v = raw(name);
  return v === undefined ? fallback : v;
}

export function int(name, fallback, min) {
  const v = raw(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  const lo = min === undefined ? 0 : min;
  if (!Number.isInteger(n) || n < lo) throw new Error(`${name} must be an integer >= ${lo}, got '${v}'`);
  return n;
}

export function bool(name, fallback) {
  const v = raw(name);
  if (v === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new Error(`${name} must be true or false, got '${v}'`);
}

/** Milliseconds from a k6-style duration ("1m30s", "500ms", "2h"); a bare number is refused, its unit being a guess. */
export function parseDurationMs(text) {
  const s = String(text).trim();
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  const unit = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  let total = 0;
  let consumed = 0;
  let m;
  while ((m = re.exec(s)) !== null) {
    if (m.index !== consumed) break;
    total += Number(m[1]) * unit[m[2]];
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== s.length) throw new Error(`not a duration: '${text}' (use e.g. 30s, 2m, 1m30s, 500ms)`);
  return Math.round(total);
}

export function durationMs(name, fallback) {
  const v = raw(name);
  if (v === undefined) return parseDurationMs(fallback);
  try {
    return parseDurationMs(v);
  } catch (e) {
    throw new Error(`${name}: ${e.message}`);
  }
}

/** Milliseconds rounded up to whole seconds, so schedules computed in a script match the k6Duration() given to k6. */
export function wholeSeconds(ms) {
  return Math.ceil(ms / 1000) * 1000;
}

/** A k6 duration string for options (whole seconds, rounded up). */
export function k6Duration(ms) {
  return `${Math.ceil(ms / 1000)}s`;
}

/** BASE_URL without a trailing slash; the server itself, or the load balancer in front of several. */
export function baseUrl() {
  const url = str("BASE_URL", "http://127.0.0.1:3000").replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]+/i.test(url)) throw new Error(`BASE_URL must be an http(s) URL, got '${url}'`);
  return url;
}

/**
 * A short id put in every user name and session title of a run, so runs never
 * collide and what a run created is easy to find. Call it in setup() only:
 * init code runs once per VU and would make one id per VU.
 */
export function runId() {
  const fixed = raw("RUN_ID");
  if (fixed !== undefined) {
    if (!/^[A-Za-z0-9_.-]{1,12}$/.test(fixed)) throw new Error(`RUN_ID must be 1-12 of [A-Za-z0-9_.-], got '${fixed}'`);
    return fixed;
  }
  const random = Math.floor(Math.random() * Math.pow(36, 5)).toString(36);
  return Date.now().toString(36).slice(-5) + "00000".slice(random.length) + random;
}

/**
 * The script's thresholds, with THRESHOLDS='{"metric":["p(95)<500"]}' replacing
 * the listed metrics' entries (an empty list drops a metric's thresholds), so
 * CI can tighten or loosen them without editing the script.
 */
export function thresholds(defaults) {
  const merged = Object.assign({}, defaults);
  const v = raw("THRESHOLDS");
  if (v === undefined) return merged;
  let extra;
  try {
    extra = JSON.parse(v);
  } catch (e) {
    throw new Error(`THRESHOLDS is not JSON: ${e.message}`);
  }
  Object.keys(extra).forEach((k) => {
    if (!Array.isArray(extra[k])) throw new Error(`THRESHOLDS.${k} must be a list of expressions`);
    if (extra[k].length === 0) delete merged[k];
    else merged[k] = extra[k];
  });
  return merged;
}
