import type { ChildProcess } from "node:child_process";

export interface StopOptions {
  /** How long ffmpeg gets to act on `q` (finish the output cleanly). */
  quitMs?: number;
  /** How long after SIGTERM before SIGKILL. */
  termMs?: number;
}

export type StopOutcome = "already-exited" | "q" | "SIGTERM" | "SIGKILL";

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves true when the child has exited (Node has reaped it by then), false after `ms`. */
function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      child.off("exit", onExit);
      resolve(ok);
    };
    const onExit = (): void => done(true);
    const timer = setTimeout(() => done(exited(child)), ms);
    child.once("exit", onExit);
  });
}

/**
 * The one way an ffmpeg child is stopped: `q` on stdin, then SIGTERM, then SIGKILL. Resolves
 * once the process has exited, so it is always reaped and never left a zombie. Says which step
 * ended it.
 */
export async function stopFfmpeg(child: ChildProcess, opts: StopOptions = {}): Promise<StopOutcome> {
  if (exited(child)) return "already-exited";
  const stdin = child.stdin;
  if (stdin && !stdin.destroyed && stdin.writable) {
    // An ffmpeg that already closed its end gives EPIPE here: that is fine, the signals follow.
    stdin.on("error", () => undefined);
    stdin.end("q");
  }
  if (await waitExit(child, opts.quitMs ?? 1000)) return "q";
  child.kill("SIGTERM");
  if (await waitExit(child, opts.termMs ?? 2000)) return "SIGTERM";
  child.kill("SIGKILL");
  // SIGKILL cannot be ignored; only a process stuck in the kernel outlives it, and waiting for
  // its exit event is still the only way to reap it.
  while (!(await waitExit(child, 5000))) child.kill("SIGKILL");
  return "SIGKILL";
}
