import { createRequire } from "node:module";

/** The part of the `unix-dgram` native module we use (it ships no types). */
interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error) => void): void;
  bind(path: string): void;
  close(): void;
  on(event: "error", fn: (err: Error) => void): void;
  on(event: "message", fn: (buf: Buffer) => void): void;
  on(event: "listening", fn: () => void): void;
}
interface UnixDgram {
  createSocket(type: "unix_dgram"): UnixDgramSocket;
}

let cached: UnixDgram | undefined;

/**
 * Node has no AF_UNIX datagram sockets, and sd_notify needs one. `unix-dgram` is a small native
 * module; it is loaded only when a NOTIFY_SOCKET is set, so the daemon runs without it elsewhere.
 */
export function unixDgram(): UnixDgram {
  cached ??= createRequire(import.meta.url)("unix-dgram") as UnixDgram;
  return cached;
}

/**
 * A client of the service manager's notification socket (sd_notify(3)). Spawning
 * `systemd-notify` instead would send from a child pid, which `NotifyAccess=main` rejects and
 * which races the child's exit; a datagram from the daemon's own pid has neither problem.
 */
export class NotifySocket {
  readonly path: string;
  readonly #onError: (err: Error) => void;
  #socket: UnixDgramSocket | undefined;

  constructor(path: string, onError: (err: Error) => void) {
    this.path = path;
    this.#onError = onError;
  }

  /** Throws when the address cannot be used: abstract sockets are not supported by unix-dgram. */
  open(): void {
    if (this.path.startsWith("@")) {
      throw new Error(
        `NOTIFY_SOCKET "${this.path}" is an abstract socket, which cityedge cannot send to; run it under a service manager that gives a socket path`,
      );
    }
    if (!this.path.startsWith("/")) throw new Error(`NOTIFY_SOCKET "${this.path}" must be an absolute socket path`);
    const socket = unixDgram().createSocket("unix_dgram");
    // Send errors come back through the callback; a socket-level one is reported, not thrown.
    socket.on("error", this.#onError);
    this.#socket = socket;
  }

  /** Sends one notification, e.g. "READY=1" or "WATCHDOG=1\nSTATUS=ok". */
  send(state: string): Promise<void> {
    const socket = this.#socket;
    if (!socket) return Promise.reject(new Error("notify socket is not open"));
    const buf = Buffer.from(state, "utf8");
    return new Promise((resolve, reject) => {
      socket.send(buf, 0, buf.length, this.path, (err) => (err ? reject(new Error(`sd_notify to ${this.path} failed: ${err.message}`)) : resolve()));
    });
  }

  close(): void {
    this.#socket?.close();
    this.#socket = undefined;
  }
}
