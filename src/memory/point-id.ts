import { createHash } from "node:crypto";

/**
 * Namespace of message point ids. Fixed forever: changing it would give every
 * already indexed message a new id, so re-indexing would duplicate instead of
 * overwrite.
 */
export const MESSAGE_POINT_NAMESPACE = "02e8d8bd-8b59-4986-a43f-fc46ed753030";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/** RFC 9562 version-5 UUID (SHA-1 of namespace bytes + UTF-8 name). */
export function uuidV5(name: string, namespace: string): string {
  if (!isUuid(namespace)) throw new TypeError(`namespace is not a UUID: ${namespace}`);
  const hash = createHash("sha1")
    .update(Buffer.from(namespace.replaceAll("-", ""), "hex"))
    .update(name, "utf8")
    .digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The vector point id of a stored message. Deterministic, so an indexer that
 * retries after a crash overwrites the point it may already have written.
 * A number and a bigint of the same value give the same id (the `pg` driver
 * hands bigint columns over as strings or bigints, callers as numbers).
 */
export function pointIdForMessage(messageId: number | bigint, namespace: string = MESSAGE_POINT_NAMESPACE): string {
  if (typeof messageId === "number") {
    if (!Number.isSafeInteger(messageId) || messageId < 0) {
      throw new RangeError(`message id must be a non-negative safe integer, got ${messageId}`);
    }
  } else if (messageId < 0n) {
    throw new RangeError(`message id must be non-negative, got ${messageId}`);
  }
  return uuidV5(messageId.toString(10), namespace);
}

/** Namespace of passage point ids; fixed forever, like the message namespace, and distinct from it. */
export const PASSAGE_POINT_NAMESPACE = "6f1d7c3a-2b8e-4e51-9a0c-5d3f8b7e2a14";

/** The vector point id of an attachment passage: never equal to a message's. */
export function pointIdForPassage(passageId: number | bigint): string {
  return pointIdForMessage(passageId, PASSAGE_POINT_NAMESPACE);
}
