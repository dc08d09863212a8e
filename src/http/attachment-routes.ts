/** REST routes of attachments (src/files/attachment-service.ts): upload, metadata, download, thumbnail, discard. */
import { Readable } from "node:stream";
import { z } from "zod";
import type { LimitName } from "../chat/rate-limits.js";
import type { AttachmentService } from "../files/attachment-service.js";
import * as out from "../protocol/output-schemas.js";
import { uuid } from "../protocol/schemas.js";
import type { User } from "../protocol/types.js";
import { parseWith, type RequestContext, type Router } from "./router.js";

const idParams = z.object({ id: uuid });
const uploadBody = z.object({ file: z.string().describe("The file (one part named \"file\"; its filename is kept as the attachment's name)") });

/** RFC 6266: an ASCII fallback and the exact name in UTF-8. */
function disposition(kind: "attachment" | "inline", name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/**
 * Stored files are served as downloads that a browser never renders as a
 * page of this origin: an uploaded HTML file must not run script here.
 */
const SAFE_HEADERS = {
  "x-content-type-options": "nosniff",
  "content-security-policy": "default-src 'none'; sandbox",
  "cross-origin-resource-policy": "same-site",
};

export function registerAttachmentRoutes(
  router: Router,
  attachments: AttachmentService,
  requireUser: (ctx: RequestContext, limit: LimitName) => Promise<User>,
): void {
  const idOf = (ctx: RequestContext) => parseWith(uuid, ctx.params.id);
  router
    .add("POST", "/api/sessions/:id/attachments", async (ctx) => {
      try {
        const user = await requireUser(ctx, "upload");
        return { status: 201, body: await attachments.upload(user, idOf(ctx), ctx.req) };
      } catch (err) {
        // A refused upload's body is read and dropped, so the client gets the error reply.
        ctx.req.resume();
        throw err;
      }
    }, {
      summary: "Upload a file into a session (members); send its id with message:send within the pending TTL",
      description:
        "multipart/form-data with one part named `file`, streamed to the file store. At most MAX_UPLOAD_BYTES; " +
        "its type is judged by its bytes (not its name or declared type) and must be one of UPLOAD_ALLOWED_TYPES. " +
        "Images get a thumbnail. Counts towards the uploader's STORAGE_QUOTA_BYTES.",
      tag: "attachments",
      auth: true,
      params: idParams,
      body: uploadBody,
      bodyContentType: "multipart/form-data",
      responses: { 201: { description: "stored, pending until sent", body: out.attachment } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "NOT_FOUND", "ARCHIVED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "STORAGE_QUOTA_EXCEEDED", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("GET", "/api/attachments/:id", async (ctx) => {
      const user = await requireUser(ctx, "read");
      return { body: await attachments.get(user, idOf(ctx)) };
    }, {
      summary: "An attachment's metadata (members of its session; an unsent upload only its uploader)",
      tag: "attachments",
      auth: true,
      params: idParams,
      responses: { 200: { description: "the attachment", body: out.attachment } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "NOT_FOUND", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("GET", "/api/attachments/:id/content", async (ctx) => {
      const user = await requireUser(ctx, "read");
      const f = await attachments.open(user, idOf(ctx), "content");
      return {
        stream: f.stream as Readable & AsyncIterable<Uint8Array>,
        contentType: f.contentType,
        headers: {
          ...SAFE_HEADERS,
          "content-disposition": disposition("attachment", f.attachment.name),
          ...(f.size !== undefined ? { "content-length": String(f.size) } : {}),
        },
      };
    }, {
      summary: "Download an attachment's bytes (members of its session; an unsent upload only its uploader)",
      tag: "attachments",
      auth: true,
      params: idParams,
      responses: { 200: { description: "the file, as a download", contentType: "application/octet-stream" } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "NOT_FOUND", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("GET", "/api/attachments/:id/thumbnail", async (ctx) => {
      const user = await requireUser(ctx, "read");
      const f = await attachments.open(user, idOf(ctx), "thumbnail");
      return {
        stream: f.stream as Readable & AsyncIterable<Uint8Array>,
        contentType: "image/webp",
        headers: { ...SAFE_HEADERS, "content-disposition": disposition("inline", `${f.attachment.name}.webp`) },
      };
    }, {
      summary: "An image attachment's thumbnail, a WebP of at most 320 pixels a side (members of its session)",
      tag: "attachments",
      auth: true,
      params: idParams,
      responses: { 200: { description: "the thumbnail", contentType: "image/webp" } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "NOT_FOUND", "RATE_LIMITED", "UNAVAILABLE"],
    })
    .add("DELETE", "/api/attachments/:id", async (ctx) => {
      const user = await requireUser(ctx, "upload");
      await attachments.remove(user, idOf(ctx));
      return { status: 204 };
    }, {
      summary: "Discard the caller's own unsent upload (sent files go with their message or session)",
      tag: "attachments",
      auth: true,
      params: idParams,
      responses: { 204: { description: "discarded" } },
      errors: ["BAD_REQUEST", "UNAUTHENTICATED", "NOT_FOUND", "RATE_LIMITED", "UNAVAILABLE"],
    });
}
