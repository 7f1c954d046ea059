/**
 * A loopback TCP forwarder in front of the bridge, so a test can cut a client's connection the
 * way a network does (no close frame: the client sees 1006) and keep it cut for a while, or
 * refuse WebSocket upgrades the way some corporate proxies do (`refuseUpgrades`: a request with
 * `Upgrade: websocket` gets HTTP 403, any other request goes through). Real sockets both ways;
 * nothing about WebSocket is faked.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

/** Forwards `127.0.0.1:<port>` to `target`. */
export class TcpProxy {
  /** While true, new connections are cut at once. */
  blocked = false;
  /** While true, a new connection whose request asks for `Upgrade: websocket` gets HTTP 403. */
  refuseUpgrades = false;
  /** Upgrade requests refused so far. */
  upgradesRefused = 0;
  private readonly pairs = new Set<[Socket, Socket]>();

  private constructor(private readonly server: Server) {}

  /** Listen on a free loopback port and forward to `targetPort` on loopback. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server);
    server.on("connection", (client) => proxy.forward(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return proxy;
  }

  /** The port the proxy listens on. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Cut every forwarded connection now. */
  dropAll(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  /** Cut everything and stop listening. */
  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private forward(client: Socket, targetPort: number): void {
    if (this.blocked) {
      client.destroy();
      return;
    }
    if (this.refuseUpgrades) {
      this.screen(client, targetPort);
      return;
    }
    this.pipe(client, targetPort, null);
  }

  /** Read the request head; refuse it if it is a WebSocket upgrade, else forward it all. */
  private screen(client: Socket, targetPort: number): void {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (!head.includes("\r\n\r\n") && head.length < 65_536) return;
      client.off("data", onData);
      client.pause();
      if (/^upgrade:\s*websocket\s*$/im.test(head.toString("latin1"))) {
        this.upgradesRefused++;
        client.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
      }
      this.pipe(client, targetPort, head);
    };
    client.on("data", onData);
    client.on("error", () => client.destroy());
  }

  private pipe(client: Socket, targetPort: number, head: Buffer | null): void {
    const upstream = connect(targetPort, "127.0.0.1");
    if (head) upstream.write(head);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.on("error", end);
      socket.on("close", end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }
}
