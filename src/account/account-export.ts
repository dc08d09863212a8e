/**
 * The account export: one JSON document, produced a page at a time so a
 * long history never sits in memory as one string.
 *
 * What it holds: the profile; every session the user is a member of, with
 * its metadata and the user's role; and in each, the user's own messages and
 * the assistant replies to their turns; their daily token usage; and the
 * ratings and comments they gave replies. Other members' messages in shared
 * sessions are left out: an export is a copy that leaves the service, and
 * those words are theirs to export. The pages are read one after another, not
 * from one snapshot: a message sent during the export may or may not be in it.
 */
import type pg from "pg";
import { exportFeedbackAfter, exportMessagesAfter, exportProfile, exportSessionsAfter, exportUsageAfter, type ExportProfile } from "../db/account-export.js";
import { AppError } from "../protocol/errors.js";

export const EXPORT_FORMAT = "memchat-export/1";
const SESSIONS_PER_PAGE = 100;
const MESSAGES_PER_PAGE = 500;
const ROWS_PER_PAGE = 500;

/** Reads the profile now (so a missing account fails before anything is sent), then streams the rest. */
export async function exportDocument(pool: pg.Pool, userId: string): Promise<AsyncIterable<string>> {
  const profile = await exportProfile(pool, userId);
  if (!profile) throw new AppError("UNAUTHENTICATED", "no such account");
  return chunks(pool, profile);
}

async function* chunks(pool: pg.Pool, profile: ExportProfile): AsyncGenerator<string> {
  const head = {
    format: EXPORT_FORMAT,
    exportedAt: new Date().toISOString(),
    contents: "your profile; every session you are a member of; in each, your messages (with the names, types and sizes of files you sent; download the files themselves from GET /api/attachments/{id}/content) and the assistant's replies to them (other members' messages are not included); your token usage per UTC day; the ratings and comments you gave assistant replies",
    user: profile,
  };
  yield `${JSON.stringify(head).slice(0, -1)},"sessions":[`;
  let afterSession: string | null = null;
  let firstSession = true;
  for (;;) {
    const page = await exportSessionsAfter(pool, profile.id, afterSession, SESSIONS_PER_PAGE);
    for (const s of page) {
      yield `${firstSession ? "" : ","}${JSON.stringify(s).slice(0, -1)},"messages":[`;
      firstSession = false;
      let afterSeq = 0;
      let firstMessage = true;
      for (;;) {
        const messages = await exportMessagesAfter(pool, s.id, profile.id, afterSeq, MESSAGES_PER_PAGE);
        if (messages.length > 0) {
          yield `${firstMessage ? "" : ","}${messages.map((m) => JSON.stringify(m)).join(",")}`;
          firstMessage = false;
          afterSeq = messages.at(-1)!.seq;
        }
        if (messages.length < MESSAGES_PER_PAGE) break;
      }
      yield "]}";
    }
    if (page.length < SESSIONS_PER_PAGE) break;
    afterSession = page.at(-1)!.id;
  }
  yield '],"usage":[';
  let afterDay: string | null = null;
  for (let first = true; ; ) {
    const days = await exportUsageAfter(pool, profile.id, afterDay, ROWS_PER_PAGE);
    if (days.length > 0) {
      yield `${first ? "" : ","}${days.map((d) => JSON.stringify(d)).join(",")}`;
      first = false;
      afterDay = days.at(-1)!.day;
    }
    if (days.length < ROWS_PER_PAGE) break;
  }
  yield '],"feedback":[';
  let afterMessage = 0;
  for (let first = true; ; ) {
    const ratings = await exportFeedbackAfter(pool, profile.id, afterMessage, ROWS_PER_PAGE);
    if (ratings.length > 0) {
      yield `${first ? "" : ","}${ratings.map((f) => JSON.stringify(f)).join(",")}`;
      first = false;
      afterMessage = ratings.at(-1)!.messageId;
    }
    if (ratings.length < ROWS_PER_PAGE) break;
  }
  yield "]}";
}
