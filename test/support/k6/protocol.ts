/**
 * Messages between a VU worker (the script's JavaScript, which blocks like k6's
 * does) and its host on the main thread (which owns the sockets and timers of
 * the network, never the script's). Plain data: they cross a MessagePort.
 */

export type MetricType = "counter" | "gauge" | "rate" | "trend";

export interface MetricDecl {
  name: string;
  type: MetricType;
  isTime: boolean;
}

export interface Sample {
  metric: string;
  value: number;
  tags: Record<string, string>;
}

/** What k6/execution exposes for the running iteration. */
export interface ExecInfo {
  scenario: {
    name: string;
    executor: string;
    startTime: number;
    iterationInTest: number;
    iterationInInstance: number;
    progress: number;
  } | null;
  vu: { idInTest: number; idInInstance: number; iterationInInstance: number; iterationInScenario: number };
}

export interface HttpRequest {
  method: string;
  url: string;
  body: string | null;
  headers: Record<string, string>;
  timeoutMs: number;
}

export interface HttpResponse {
  url: string;
  status: number;
  body: string;
  headers: Record<string, string>;
  error: string;
  errorCode: number;
  durationMs: number;
}

/** VU → host. */
export type ToHost =
  | { op: "ready"; options: unknown; exports: string[]; metrics: MetricDecl[] }
  | { op: "init-error"; error: string }
  | { op: "ws.open"; sid: number; url: string; headers: Record<string, string> }
  | { op: "ws.send"; sid: number; data: string }
  | { op: "ws.ping"; sid: number }
  | { op: "ws.close"; sid: number; code: number }
  | { op: "ws.returned"; sid: number }
  | { op: "http"; rid: number; requests: HttpRequest[] }
  | { op: "samples"; samples: Sample[] }
  | { op: "log"; level: string; text: string }
  | { op: "hung"; reason: string; stack: string }
  | { op: "done"; ok: true; result: string | undefined }
  | { op: "done"; ok: false; error: string; interrupted: boolean };

/** Host → VU, before the host stamps it. */
export type ToVuBody =
  | { ev: "run"; fn: string; data: string | undefined; exec: ExecInfo }
  | { ev: "stop" }
  | { ev: "interrupt" }
  | { ev: "ws.open"; sid: number; status: number; headers: Record<string, string>; error: string }
  | { ev: "ws.message"; sid: number; data: string; binary: boolean }
  | { ev: "ws.ping"; sid: number }
  | { ev: "ws.pong"; sid: number }
  | { ev: "ws.close"; sid: number; code: number; reason: string; frame: boolean }
  | { ev: "http"; rid: number; responses: HttpResponse[] };

/** `at` is the host's Date.now() when it sent the message: the order events became ready in. */
export type ToVu = ToVuBody & { at: number };

export interface VuWorkerData {
  script: string;
  env: Record<string, string>;
  signal: SharedArrayBuffer;
  vuId: number;
}
