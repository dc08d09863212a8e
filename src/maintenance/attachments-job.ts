/** Removes uploads never sent (ATTACHMENT_PENDING_TTL_MS) and deletes the stored objects of deleted attachments. */
import type { AttachmentService } from "../files/attachment-service.js";
import type { MaintenanceJob } from "./scheduler.js";

export function attachmentsJob(attachments: AttachmentService, intervalMs: number): MaintenanceJob {
  return { name: "attachments", intervalMs, run: ({ now, signal }) => attachments.sweep(now, signal) };
}
