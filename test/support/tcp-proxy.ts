/**
 * A TCP proxy on loopback in front of the server, so a test can drop a
 * client's network the way a flaky connection does: cut every connection and
 * refuse new ones until restored, or let requests through while swallowing
 * every answer. The client library's own reconnect logic then runs unmodified.
 */
import net from "node:net";

export interface TcpProxy {
  /** http://127.0.0.1:PORT, forwarding to the target. */
  url: string;
  /** Destroys every open connection; new ones are refused until restore(). */
  cut(): void;
  /** Keeps forwarding client-to-server bytes, but drops everything the server sends back. */
  swallowReplies(): void;
  /** Back to forwarding both ways, and accepting connections. */
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let refusing = false;
  let swallowing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    const pair = { client, upstream };
    pairs.add(pair);
    client.on("data", (b) => upstream.write(b));
    upstream.on("data", (b) => {
      if (!swallowing) client.write(b);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const cut = () => {
    refusing = true;
    for (const p of pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    pairs.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    cut,
    swallowReplies() {
      swallowing = true;
    },
    restore() {
      refusing = false;
      swallowing = false;
    },
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
