import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createSource, LiveView } from "../drivers/camera/index.js";
import { CAMERA_SCHEMA, LIVE_VIEW_SCHEMA } from "../runtime/config/sections/cameras.js";
import { isAlive, memoryLogger, waitFor, lingeringZombies } from "./helpers/camera.js";
import { sharedFile } from "./helpers/sharedData.js";

const CLIP = sharedFile("video/street-traffic-640x352.mp4");
let view: LiveView | undefined;

afterEach(async () => {
  await view?.stop();
  view = undefined;
});

async function startView(): Promise<LiveView> {
  const cam = CAMERA_SCHEMA.parse({ id: "gate-3", url: `file://${CLIP}` });
  view = new LiveView(LIVE_VIEW_SCHEMA.parse({ enabled: true, width: 320, fps: 25 }), {
    log: memoryLogger().log,
    sources: new Map([["gate-3", createSource(cam, "/")]]),
    port: 0,
  });
  await view.start();
  return view;
}

/** Opens a viewer and collects what it receives until it has `bytes`. */
function watch(port: number, bytes: number): Promise<{ ws: WebSocket; data: Buffer }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/cameras/gate-3`);
    const chunks: Buffer[] = [];
    let total = 0;
    ws.on("message", (d: Buffer) => {
      chunks.push(d);
      total += d.length;
      if (total >= bytes) {
        ws.removeAllListeners("message");
        resolve({ ws, data: Buffer.concat(chunks) });
      }
    });
    ws.on("error", reject);
  });
}

const closed = (ws: WebSocket) => new Promise((r) => (ws.readyState === ws.CLOSED ? r(undefined) : ws.once("close", r)));

describe.skipIf(!CLIP)("live view", () => {
  it("runs no ffmpeg until someone watches", async () => {
    const v = await startView();
    expect(v.feedPid("gate-3")).toBeUndefined();
    expect(v.health()).toMatchObject({ state: "running", feeds: 0, viewers: {} });
  });

  it("serves MPEG-1 in MPEG-TS over WebSocket, shares one ffmpeg between viewers, and stops it when the last leaves", async () => {
    const v = await startView();
    const a = await watch(v.port, 64 * 1024);
    // MPEG-TS: 188-byte packets, each starting with the sync byte 0x47.
    expect([0, 188, 376, 188 * 100].map((i) => a.data[i])).toEqual([0x47, 0x47, 0x47, 0x47]);
    // An MPEG-1 video sequence header (00 00 01 B3) carrying the 320-wide picture (12 bits of width).
    const seq = a.data.indexOf(Buffer.from([0, 0, 1, 0xb3]));
    expect(seq).toBeGreaterThan(0);
    expect((a.data[seq + 4]! << 4) | (a.data[seq + 5]! >> 4)).toBe(320);
    const pid = v.feedPid("gate-3")!;
    expect(isAlive(pid)).toBe(true);

    const b = await watch(v.port, 1024);
    expect(v.feedPid("gate-3")).toBe(pid);
    expect(v.health()).toMatchObject({ viewers: { "gate-3": 2 }, feeds: 1 });

    a.ws.close();
    await closed(a.ws);
    await new Promise((r) => setTimeout(r, 300));
    expect(isAlive(pid)).toBe(true);

    b.ws.close();
    await closed(b.ws);
    await waitFor(() => !isAlive(pid), "the live ffmpeg to stop after the last viewer left", 10_000);
    expect(v.feedPid("gate-3")).toBeUndefined();
    expect(await lingeringZombies()).toEqual([]);
  });

  it("stops its ffmpeg and closes viewers when the part stops", async () => {
    const v = await startView();
    const a = await watch(v.port, 1024);
    const pid = v.feedPid("gate-3")!;
    await v.stop();
    view = undefined;
    expect(isAlive(pid)).toBe(false);
    await closed(a.ws);
    expect(await lingeringZombies()).toEqual([]);
  });

  it("restarts a watched feed whose ffmpeg dies, with the camera's backoff, and the viewer gets data again", async () => {
    const v = await startView();
    const a = await watch(v.port, 1024);
    const pid = v.feedPid("gate-3")!;
    process.kill(pid, "SIGKILL");
    await waitFor(() => v.feedPid("gate-3") !== undefined && v.feedPid("gate-3") !== pid, "a new live ffmpeg", 10_000);
    const more = await new Promise<number>((resolve) => a.ws.once("message", (d: Buffer) => resolve(d.length)));
    expect(more).toBeGreaterThan(0);
    expect(isAlive(pid)).toBe(false);
    a.ws.close();
    await closed(a.ws);
    expect(await lingeringZombies()).toEqual([]);
  });

  it("refuses an unknown camera", async () => {
    const v = await startView();
    const ws = new WebSocket(`ws://127.0.0.1:${v.port}/cameras/nope`);
    const err = await new Promise<Error>((resolve) => ws.once("error", resolve));
    expect(err.message).toContain("404");
  });
});
