import aedesModule from "aedes";
import net from "node:net";
import type { Logger } from "../log/logger.js";
import type { Part, PartHealth } from "../part.js";

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  log: Logger;
}

/** The embedded broker in health: its port and connected clients while it runs. */
export type BrokerHealth = PartHealth & { port?: number | undefined; clients?: number };

/**
 * An MQTT broker inside the daemon (aedes, in memory), so that `npm start` gives any MQTT client
 * something to watch. It is for demos and bench work: it keeps nothing across restarts.
 */
export class EmbeddedBroker implements Part {
  readonly name = "broker";
  readonly kind = "broker";
  readonly #opts: EmbeddedBrokerOptions;
  #aedes: ReturnType<typeof aedesModule.createBroker> | undefined;
  #server: net.Server | undefined;
  #error: string | undefined;

  constructor(opts: EmbeddedBrokerOptions) {
    this.#opts = opts;
  }

  /** The port it listens on (useful with port 0). */
  get port(): number | undefined {
    const a = this.#server?.address();
    return a && typeof a === "object" ? a.port : undefined;
  }

  async start(): Promise<void> {
    const { host, port, log } = this.#opts;
    // aedes is CommonJS: its factory hangs off the default export.
    const aedes = aedesModule.createBroker();
    const server = net.createServer((socket) => aedes.handle(socket));
    aedes.on("clientError", (client, err) => log.debug({ client: client.id, err: err.message }, "broker client error"));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      await new Promise<void>((r) => aedes.close(() => r()));
      this.#error =
        e.code === "EADDRINUSE"
          ? `embedded broker: ${host}:${port} is already in use (another broker running?); set broker.port or broker.enabled: false`
          : `embedded broker: cannot listen on ${host}:${port}: ${e.message}`;
      throw new Error(this.#error, { cause: err });
    }
    server.on("error", (err) => log.error({ err }, "embedded broker server error"));
    this.#aedes = aedes;
    this.#server = server;
    log.info({ host, port: this.port }, "embedded MQTT broker listening");
  }

  async stop(): Promise<void> {
    const server = this.#server;
    const aedes = this.#aedes;
    this.#server = undefined;
    this.#aedes = undefined;
    if (aedes) await new Promise<void>((r) => aedes.close(() => r()));
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  health(): BrokerHealth {
    if (this.#error) return { state: "failed", error: this.#error };
    if (!this.#server) return { state: "stopped" };
    return { state: "running", port: this.port, clients: this.#aedes?.connectedClients ?? 0 };
  }
}
