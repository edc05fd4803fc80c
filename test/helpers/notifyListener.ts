import { rmSync } from "node:fs";
import path from "node:path";
import { unixDgram } from "../../runtime/systemd/notifySocket.js";

export interface Notification {
  text: string;
  at: number;
}

/** A stand-in for systemd's notification socket: a real AF_UNIX datagram socket in a temp dir. */
export class NotifyListener {
  readonly path: string;
  readonly messages: Notification[] = [];
  #socket: ReturnType<ReturnType<typeof unixDgram>["createSocket"]> | undefined;
  #waiters: (() => void)[] = [];

  constructor(dir: string) {
    this.path = path.join(dir, "notify.sock");
  }

  async listen(): Promise<void> {
    const socket = unixDgram().createSocket("unix_dgram");
    this.#socket = socket;
    socket.on("message", (buf: Buffer) => {
      this.messages.push({ text: buf.toString("utf8"), at: Date.now() });
      for (const w of this.#waiters.splice(0)) w();
    });
    await new Promise<void>((resolve, reject) => {
      socket.on("listening", resolve);
      socket.on("error", reject);
      socket.bind(this.path);
    });
  }

  count(prefix: string): number {
    return this.messages.filter((m) => m.text.startsWith(prefix)).length;
  }

  /** Resolves when `pred` holds for the messages received so far. */
  async waitFor(pred: (msgs: Notification[]) => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.messages)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages.map((m) => m.text))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.#socket?.close();
    rmSync(this.path, { force: true });
  }
}
