/** The REST calls the scripts make around a run: register users, invite members, delete sessions. */
import { sleep } from "k6";
import http from "k6/http";

const JSON_HEADERS = { "Content-Type": "application/json" };

function bearer(token) {
  return { "Content-Type": "application/json", Authorization: `Bearer ${token}` };
}

// http.batch sends a chunk in parallel (within the batch/batchPerHost options); chunks keep a big setup from opening thousands of requests at once.
function inChunks(items, size, send) {
  const out = [];
  for (let i = 0; i < items.length; i += size) {
    const chunk = items.slice(i, i + size);
    const responses = http.batch(chunk.map(send));
    for (let j = 0; j < chunk.length; j++) out.push({ item: chunk[j], res: responses[j] });
  }
  return out;
}

function describe(res) {
  return `${res.status} ${String(res.body || res.error || "").slice(0, 200)}`;
}

function retryAfterMs(res) {
  try {
    const ms = res.json().error.retryAfterMs;
    if (typeof ms === "number" && ms > 0) return ms;
  } catch (e) {
    // no JSON body: fall back to the header
  }
  const header = Number(res.headers && res.headers["Retry-After"]);
  return header > 0 ? header * 1000 : 1000;
}

/**
 * Registers every name; returns [{username, userId, token}] in the same order,
 * or throws: a half-registered setup would measure nonsense. The server limits
 * registrations per client address (RATE_LOGIN_*), and a load generator is one
 * address, so a 429 waits as long as the server asks and tries again.
 */
export function registerUsers(baseUrl, usernames, password, chunk) {
  const users = new Array(usernames.length);
  let todo = usernames.map((username, index) => ({ username, index }));
  let waitedMs = 0;
  while (todo.length > 0) {
    const limited = [];
    let waitMs = 0;
    inChunks(todo, chunk || 20, (t) => ({
      method: "POST",
      url: `${baseUrl}/api/auth/register`,
      body: JSON.stringify({ username: t.username, password }),
      params: { headers: JSON_HEADERS, tags: { name: "POST /api/auth/register" } },
    })).forEach(({ item, res }) => {
      if (res.status === 429) {
        limited.push(item);
        waitMs = Math.max(waitMs, retryAfterMs(res));
        return;
      }
      if (res.status !== 201) throw new Error(`registering ${item.username} failed: ${describe(res)}`);
      const b = res.json();
      users[item.index] = { username: b.user.username, userId: b.user.id, token: b.token };
    });
    if (limited.length > 0) {
      waitedMs += waitMs;
      if (waitedMs > 600000) throw new Error(`registration still rate limited after ${waitedMs} ms of waiting; raise RATE_LOGIN_* on the server`);
      sleep(waitMs / 1000);
    }
    todo = limited;
  }
  return users;
}

/**
 * invites: [{sessionId, ownerToken, username, memberToken}]; throws on any
 * failure. Membership is by consent: each owner invites, then each member
 * accepts with their own token.
 */
export function inviteMembers(baseUrl, invites, chunk) {
  inChunks(invites, chunk || 20, (inv) => ({
    method: "POST",
    url: `${baseUrl}/api/sessions/${inv.sessionId}/members`,
    body: JSON.stringify({ username: inv.username }),
    params: { headers: bearer(inv.ownerToken), tags: { name: "POST /api/sessions/:id/members" } },
  })).forEach(({ item, res }) => {
    if (res.status !== 201) throw new Error(`inviting ${item.username} to ${item.sessionId} failed: ${describe(res)}`);
  });
  inChunks(invites, chunk || 20, (inv) => ({
    method: "POST",
    url: `${baseUrl}/api/invitations/${inv.sessionId}/accept`,
    body: null,
    params: { headers: bearer(inv.memberToken), tags: { name: "POST /api/invitations/:id/accept" } },
  })).forEach(({ item, res }) => {
    if (res.status !== 200) throw new Error(`${item.username} accepting ${item.sessionId} failed: ${describe(res)}`);
  });
}

/**
 * Deletes the sessions a run created (messages go with them). Best effort,
 * since teardown must not hide the run's results: failures are logged and counted.
 */
export function deleteSessions(baseUrl, sessions, chunk) {
  let deleted = 0;
  let failed = 0;
  inChunks(sessions, chunk || 20, (s) => ({
    method: "DELETE",
    url: `${baseUrl}/api/sessions/${s.sessionId}`,
    body: null,
    params: { headers: bearer(s.ownerToken), tags: { name: "DELETE /api/sessions/:id" } },
  })).forEach(({ item, res }) => {
    if (res.status === 204 || res.status === 404) deleted++;
    else {
      failed++;
      console.warn(`could not delete session ${item.sessionId}: ${describe(res)}`);
    }
  });
  return { deleted, failed };
}
