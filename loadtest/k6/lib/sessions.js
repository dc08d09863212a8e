/**
 * What a chat client must get right to resume a session, kept free of k6
 * imports so the tests can check it in Node against the real server.
 * Seqs are per-session and gap-free (the store never consumes one without a
 * row), so "everything after seq N" is a complete statement of what was missed.
 */

/**
 * Tracks which seqs of one session a client holds. `contiguous` is the highest
 * seq with nothing missing at or below it: the afterSeq to resume from.
 */
export class SeqTracker {
  constructor(baseline) {
    this.contiguous = baseline;
    this.ahead = new Set();
    this.max = baseline;
  }

  /** Records a seq; false when it was already held (a duplicate). */
  add(seq) {
    if (seq <= this.contiguous || this.ahead.has(seq)) return false;
    this.ahead.add(seq);
    if (seq > this.max) this.max = seq;
    while (this.ahead.has(this.contiguous + 1)) {
      this.ahead.delete(this.contiguous + 1);
      this.contiguous++;
    }
    return true;
  }

  has(seq) {
    return seq <= this.contiguous || this.ahead.has(seq);
  }
}

/**
 * Checks a rejoin backlog (messages after `afterSeq`) against the session's
 * lastSeq from the same reply: every seq in (afterSeq, lastSeq] must be there.
 * Seqs past lastSeq may appear (stored while the join ran) and are fine.
 */
export function checkBacklog(afterSeq, lastSeq, messages) {
  const got = new Set();
  for (let i = 0; i < messages.length; i++) got.add(messages[i].seq);
  const missing = [];
  for (let s = afterSeq + 1; s <= lastSeq; s++) if (!got.has(s)) missing.push(s);
  let stale = 0;
  got.forEach((s) => {
    if (s <= afterSeq) stale++;
  });
  return { complete: missing.length === 0 && stale === 0, missing, stale, expected: Math.max(0, lastSeq - afterSeq) };
}

/**
 * Every stored message of a session after `afterSeq`: session:join with
 * afterSeq returns at most one page and says `truncated`, so join again from
 * the last seq received until it does not. Joining an already joined session
 * is harmless (the room and presence are sets).
 * done(errorCode|null, {session, messages, pages}); session is from the first page,
 * so its lastSeq is the server's count when the client (re)joined.
 */
export function fetchAfter(sio, sessionId, afterSeq, done, maxPages) {
  const limit = maxPages || 1000;
  const messages = [];
  let session = null;
  let pages = 0;
  function page(from) {
    sio.emit("session:join", { sessionId, afterSeq: from }, (reply) => {
      if (!reply || reply.ok !== true) {
        done((reply && reply.error && reply.error.code) || "BAD_REPLY", null);
        return;
      }
      pages++;
      const d = reply.data;
      if (session === null) session = d.session;
      let last = from;
      for (let i = 0; i < d.messages.length; i++) {
        messages.push(d.messages[i]);
        if (d.messages[i].seq > last) last = d.messages[i].seq;
      }
      // A truncated page that made no progress would loop forever.
      if (d.truncated && last > from && pages < limit) page(last);
      else done(d.truncated ? "TRUNCATED" : null, { session, messages, pages });
    });
  }
  page(afterSeq);
}
