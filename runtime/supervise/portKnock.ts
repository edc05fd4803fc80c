import net from "node:net";

/** Resolves true when host:port accepts a TCP connection within `timeoutMs` (the socket is closed at once). */
export function probeTcp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (up: boolean): void => {
      socket.destroy();
      resolve(up);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

export interface PortKnockOptions {
  host: string;
  port: number;
  /**
   * The link that was lost had worked: the port answering at all is enough (the peer may have
   * restarted between two knocks). Otherwise it must first refuse, then accept.
   */
  wasWorking: boolean;
  /** Checked before each knock's answer is acted on: false once the wait is over for other reasons. */
  waiting: () => boolean;
  /** The port went from refusing to accepting: reconnect now. */
  onBack: () => void;
  /** Between knocks (default 500 ms). */
  everyMs?: number;
  /** How long one knock waits for the connection (default 1000 ms). */
  timeoutMs?: number;
}

/**
 * While a client waits out its backoff to reconnect (a camera's ffmpeg, the MQTT uplink), knocks
 * on the peer's TCP port: when it goes from refusing to accepting connections, the peer is back
 * and waiting out the rest of the backoff would only lose time. `onBack` is called once. The
 * shortcut cannot loop on a peer that accepts connections and then fails the protocol: unless
 * the link before worked, the port must be seen refusing first.
 */
export class PortKnocker {
  readonly #o: PortKnockOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: PortKnockOptions) {
    this.#o = opts;
  }

  start(): void {
    this.stop();
    let wasDown = this.#o.wasWorking;
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void probeTcp(this.#o.host, this.#o.port, this.#o.timeoutMs ?? 1000).then((up) => {
        busy = false;
        if (this.#timer !== timer || !this.#o.waiting()) return;
        if (!up) wasDown = true;
        else if (wasDown) {
          this.stop();
          this.#o.onBack();
        }
      });
    }, this.#o.everyMs ?? 500);
    this.#timer = timer;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
