import type { UserStore } from "./ports.js";

/**
 * Usernames by user id, cached: they never change, and presence events and
 * prompts name users often. A deleted user's id reads as "".
 */
export function usernames(users: Pick<UserStore, "findById">): (userId: string) => Promise<string> {
  const cache = new Map<string, string>();
  return async (userId) => {
    const hit = cache.get(userId);
    if (hit !== undefined) return hit;
    const u = await users.findById(userId);
    if (cache.size > 10_000) cache.clear();
    cache.set(userId, u?.username ?? "");
    return u?.username ?? "";
  };
}
