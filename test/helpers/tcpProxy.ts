import net from "node:net";

/** Bytes sent into a partition: read and thrown away, so the sender's buffers do not fill. */
function swallow(_chunk: Buffer): void {
  // Intentionally nothing: this is what a blackholed link does with data.
}

/**
 * A TCP proxy on 127.0.0.1 between a client and a server, that a test can cut and reopen:
 * `cut()` resets every connection and refuses new ones until `reopen()`; `blackhole()` is a
 * silent partition: connections stay open but every byte is swallowed (only keep-alives can tell),
 * and new connections hang. The server behind it and everybody else connected to it stay up.
 */
export class TcpProxy {
  readonly #targetPort: number;
  #server: net.Server | undefined;
  #open = true;
  #silent = false;
  readonly #held = new Set<net.Socket>();
  readonly #pairs = new Set<[net.Socket, net.Socket]>();
  /** Connections accepted and forwarded so far. */
  connections = 0;

  constructor(targetPort: number) {
    this.#targetPort = targetPort;
  }

  async start(): Promise<number> {
    const server = net.createServer((client) => this.#accept(client));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return this.port;
  }

  get port(): number {
    return (this.#server?.address() as net.AddressInfo).port;
  }

  /** Resets every open connection and refuses new ones. */
  cut(): void {
    this.#open = false;
    for (const [a, b] of this.#pairs) {
      a.resetAndDestroy();
      b.destroy();
    }
    this.#pairs.clear();
  }

  /** A silent partition: nothing passes either way and nobody is told. */
  blackhole(): void {
    this.#silent = true;
    for (const [a, b] of this.#pairs) {
      a.unpipe(b);
      b.unpipe(a);
      a.on("data", swallow);
      b.on("data", swallow);
    }
  }

  /** The network is back: connections swallowed by a blackhole are reset (as their peers would find), new ones pass. */
  reopen(): void {
    if (this.#silent) {
      for (const [a, b] of this.#pairs) {
        a.resetAndDestroy();
        b.destroy();
      }
      this.#pairs.clear();
      for (const s of this.#held) s.resetAndDestroy();
      this.#held.clear();
    }
    this.#silent = false;
    this.#open = true;
  }

  async stop(): Promise<void> {
    this.cut();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  #accept(client: net.Socket): void {
    if (this.#silent) {
      // A connection attempt into a partition gets no answer at all.
      this.#held.add(client);
      client.on("data", swallow);
      client.on("error", () => this.#held.delete(client));
      return;
    }
    if (!this.#open) {
      client.resetAndDestroy();
      return;
    }
    this.connections++;
    const upstream = net.connect(this.#targetPort, "127.0.0.1");
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.#pairs.add(pair);
    const close = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
