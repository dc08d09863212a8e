/**
 * Per-user rooms: each socket joins `user:<id>` and `user:<id>#<token
 * version>` when it connects, so a user's connections can be reached on
 * every node (user-sockets.ts).
 */
export const userRoom = (userId: string): string => `user:${userId}`;
export const userVersionRoom = (userId: string, tokenVersion: number): string => `user:${userId}#${tokenVersion}`;
