/**
 * A stand-in for an S3-compatible object store (like the Qdrant and LLM
 * doubles): a loopback HTTP server speaking the S3 REST wire protocol with
 * path-style addressing, as the AWS SDK sends it to MinIO. It checks every
 * request's SigV4 signature (Authorization: AWS4-HMAC-SHA256 ...) against its
 * credentials and the body against x-amz-content-sha256, so wrong keys or a
 * malformed request fail here as they would against the real thing.
 *
 * Supported: HEAD bucket; PUT, GET, HEAD, DELETE object; multipart upload
 * (POST ?uploads, PUT ?partNumber&uploadId, POST ?uploadId, DELETE
 * ?uploadId). Anything else is answered 501 NotImplemented, never with a
 * made-up result. Errors are S3's XML error documents.
 */
import { createHash, createHmac, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface S3DoubleOptions {
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
}

interface Multipart {
  key: string;
  parts: Map<number, { data: Buffer; etag: string }>;
}

export interface S3Double {
  url: string;
  objects: Map<string, { data: Buffer; contentType: string; etag: string }>;
  /** Multipart uploads started and neither completed nor aborted. */
  multipart: Map<string, Multipart>;
  /** "METHOD kind" per request answered, e.g. "PUT object", "POST complete-multipart". */
  log: string[];
  /** Requests refused for their signature. */
  signatureFailures: number;
  close(): Promise<void>;
}

const xml = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
const esc = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
const sha256hex = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();
/** RFC 3986 encoding, as SigV4 canonical requests want it. */
const uriEncode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export async function startS3Double(opts: S3DoubleOptions): Promise<S3Double> {
  const region = opts.region ?? "us-east-1";
  const objects: S3Double["objects"] = new Map();
  const multipart: S3Double["multipart"] = new Map();
  const log: string[] = [];
  const state = { signatureFailures: 0 };

  function error(res: ServerResponse, status: number, code: string, message: string, head = false): void {
    res.writeHead(status, { "content-type": "application/xml" });
    res.end(head ? undefined : xml(`<Error><Code>${code}</Code><Message>${esc(message)}</Message></Error>`));
  }

  /** Checks the SigV4 Authorization header of a request with its body. */
  function verify(req: IncomingMessage, url: URL, body: Buffer): string | null {
    const auth = req.headers.authorization ?? "";
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) return "missing or malformed AWS4-HMAC-SHA256 Authorization header";
    const [, keyId, date, reg, signedHeaders, signature] = m;
    if (keyId !== opts.accessKeyId) return "unknown access key";
    if (reg !== region) return `wrong region ${reg}`;
    const amzDate = String(req.headers["x-amz-date"] ?? "");
    if (!amzDate.startsWith(date!)) return "x-amz-date does not match the credential scope";
    const payloadHash = String(req.headers["x-amz-content-sha256"] ?? "");
    if (payloadHash.startsWith("STREAMING-")) return `streaming payload signing (${payloadHash}) is not supported by this double`;
    if (payloadHash !== "UNSIGNED-PAYLOAD" && payloadHash !== sha256hex(body)) return "x-amz-content-sha256 does not match the body";
    const names = signedHeaders!.split(";");
    if (!names.includes("host") || !names.includes("x-amz-date")) return "host and x-amz-date must be signed";
    const canonicalHeaders = names.map((n) => `${n}:${String(req.headers[n] ?? "").trim().replace(/\s+/g, " ")}\n`).join("");
    const query = [...url.searchParams]
      .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
      .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join("&");
    const canonical = [req.method, url.pathname, query, canonicalHeaders, signedHeaders, payloadHash].join("\n");
    const scope = `${date}/${reg}/s3/aws4_request`;
    const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256hex(canonical)].join("\n");
    const kDate = hmac(`AWS4${opts.secretAccessKey}`, date!);
    const kSigning = hmac(hmac(hmac(kDate, reg!), "s3"), "aws4_request");
    const expected = createHmac("sha256", kSigning).update(toSign).digest("hex");
    return expected === signature ? null : "signature does not match";
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const head = req.method === "HEAD";
    const problem = verify(req, url, body);
    if (problem) {
      state.signatureFailures++;
      return error(res, 403, "SignatureDoesNotMatch", problem, head);
    }
    const [, bucket, ...rest] = url.pathname.split("/");
    const key = rest.map(decodeURIComponent).join("/");
    if (bucket !== opts.bucket) return error(res, 404, "NoSuchBucket", "The specified bucket does not exist", head);
    const q = url.searchParams;
    const kind = (k: string) => log.push(`${req.method} ${k}`);
    if (key === "") {
      if (req.method === "HEAD") {
        kind("bucket");
        res.writeHead(200).end();
        return;
      }
      return error(res, 501, "NotImplemented", `bucket operation ${req.method} ${url.search} is not supported by this double`, head);
    }
    if (req.method === "POST" && q.has("uploads")) {
      kind("create-multipart");
      const uploadId = randomUUID();
      multipart.set(uploadId, { key, parts: new Map() });
      res.writeHead(200, { "content-type": "application/xml" });
      res.end(xml(`<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${esc(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`));
      return;
    }
    const uploadId = q.get("uploadId");
    if (uploadId !== null) {
      const mp = multipart.get(uploadId);
      if (!mp || mp.key !== key) return error(res, 404, "NoSuchUpload", "The specified multipart upload does not exist", head);
      if (req.method === "PUT" && q.has("partNumber")) {
        kind("upload-part");
        const n = Number(q.get("partNumber"));
        if (!Number.isInteger(n) || n < 1 || n > 10000) return error(res, 400, "InvalidArgument", "partNumber must be 1..10000");
        const etag = `"${createHash("md5").update(body).digest("hex")}"`;
        mp.parts.set(n, { data: body, etag });
        res.writeHead(200, { etag }).end();
        return;
      }
      if (req.method === "POST") {
        kind("complete-multipart");
        const listed = [...body.toString("utf8").matchAll(/<Part>\s*(?:<[^>]+>[^<]*<\/[^>]+>\s*)*?<\/Part>/g)].map((p) => ({
          n: Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(p[0])?.[1]),
          etag: /<ETag>([^<]+)<\/ETag>/.exec(p[0])?.[1]?.replace(/&quot;/g, '"'),
        }));
        if (listed.length === 0) return error(res, 400, "MalformedXML", "no parts listed");
        const datas: Buffer[] = [];
        for (const [i, p] of listed.entries()) {
          const part = mp.parts.get(p.n);
          if (!part || part.etag !== p.etag) return error(res, 400, "InvalidPart", `part ${p.n} was not uploaded or its ETag differs`);
          if (i > 0 && p.n <= listed[i - 1]!.n) return error(res, 400, "InvalidPartOrder", "parts must be listed in ascending order");
          if (i < listed.length - 1 && part.data.length < 5 * 1024 * 1024) return error(res, 400, "EntityTooSmall", "a part but the last is smaller than 5 MiB");
          datas.push(part.data);
        }
        const data = Buffer.concat(datas);
        const etag = `"${sha256hex(data).slice(0, 32)}-${listed.length}"`;
        objects.set(key, { data, contentType: "application/octet-stream", etag });
        multipart.delete(uploadId);
        res.writeHead(200, { "content-type": "application/xml" });
        res.end(xml(`<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${esc(key)}</Key><ETag>${esc(etag)}</ETag></CompleteMultipartUploadResult>`));
        return;
      }
      if (req.method === "DELETE") {
        kind("abort-multipart");
        multipart.delete(uploadId);
        res.writeHead(204).end();
        return;
      }
      return error(res, 501, "NotImplemented", `multipart ${req.method} is not supported by this double`, head);
    }
    if ([...q.keys()].some((k) => k !== "x-id")) return error(res, 501, "NotImplemented", `object sub-resource ${url.search} is not supported by this double`, head);
    const obj = objects.get(key);
    switch (req.method) {
      case "PUT": {
        kind("object");
        if (req.headers["content-length"] === undefined) return error(res, 411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
        const etag = `"${createHash("md5").update(body).digest("hex")}"`;
        objects.set(key, { data: body, contentType: String(req.headers["content-type"] ?? "application/octet-stream"), etag });
        res.writeHead(200, { etag }).end();
        return;
      }
      case "GET":
      case "HEAD":
        kind("object");
        if (!obj) return error(res, 404, "NoSuchKey", "The specified key does not exist.", head);
        res.writeHead(200, { "content-type": obj.contentType, "content-length": String(obj.data.length), etag: obj.etag });
        res.end(head ? undefined : obj.data);
        return;
      case "DELETE":
        kind("object");
        objects.delete(key);
        res.writeHead(204).end();
        return;
      default:
        return error(res, 501, "NotImplemented", `${req.method} is not supported by this double`, head);
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) error(res, 500, "InternalError", (err as Error).message);
      else res.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    objects,
    multipart,
    log,
    get signatureFailures() {
      return state.signatureFailures;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
