/**
 * The client's address for per-address limits. Behind a load balancer
 * (TRUST_PROXY) it is the left-most X-Forwarded-For entry; otherwise the
 * socket's peer, since anyone can send the header.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trustProxy: boolean): string {
  if (trustProxy && forwardedFor) {
    const first = (Array.isArray(forwardedFor) ? forwardedFor[0] : forwardedFor)?.split(",")[0]?.trim();
    if (first) return first;
  }
  return (peer ?? "unknown").replace(/^::ffff:/, "");
}
