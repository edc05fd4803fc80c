import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createCamera, type Camera } from "../drivers/camera/index.js";
import { JpegSplitter } from "../drivers/camera/stills.js";
import { CAMERA_SCHEMA } from "../runtime/config/sections/cameras.js";
import { ffmpeg, memoryLogger, takeFrames, waitFor } from "./helpers/camera.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "cityedge-stills-"));
const running: Camera[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function jpeg(w: number, h: number, colour: { r: number; g: number; b: number }): Promise<Buffer> {
  return sharp({ create: { width: w, height: h, channels: 3, background: colour } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

describe("cutting a stream of JPEGs", () => {
  it("finds every image however the bytes are chunked, skipping garbage between them", async () => {
    const images = [
      await jpeg(64, 48, { r: 255, g: 0, b: 0 }),
      await jpeg(32, 32, { r: 0, g: 0, b: 255 }),
      await jpeg(80, 20, { r: 0, g: 255, b: 0 }),
    ];
    const stream = Buffer.concat([Buffer.from("junk"), images[0]!, images[1]!, Buffer.from([0xff, 0x00, 0x12]), images[2]!]);
    for (const size of [1, 2, 7, 100, stream.length]) {
      const out: Buffer[] = [];
      const s = new JpegSplitter((j) => out.push(j));
      for (let i = 0; i < stream.length; i += size) s.push(stream.subarray(i, i + size));
      expect(
        out.map((b) => b.equals(images[out.indexOf(b)]!)),
        `chunks of ${size}`,
      ).toEqual([true, true, true]);
      expect(s.dropped).toBe(7);
    }
  });

  it("is not fooled by 0xFF 0xD9 inside a marker segment", async () => {
    const img = await jpeg(16, 16, { r: 10, g: 20, b: 30 });
    // A comment segment (FFFE) whose text holds an end-of-image marker, right after SOI.
    const text = Buffer.from([0x41, 0xff, 0xd9, 0x42]);
    const com = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, text.length + 2]), text]);
    const tricky = Buffer.concat([img.subarray(0, 2), com, img.subarray(2)]);
    const out: Buffer[] = [];
    new JpegSplitter((j) => out.push(j)).push(tricky);
    expect(out).toHaveLength(1);
    expect(out[0]!.equals(tricky)).toBe(true);
    expect((await sharp(out[0]).metadata()).width).toBe(16);
  });
});

describe("stills at the camera's own resolution", () => {
  const clip = path.join(tmp, "halves.mkv");
  beforeAll(async () => {
    // 640x360, left half red and right half blue, lossless: the still's pixels can be checked.
    await ffmpeg([
      "-f",
      "lavfi",
      "-i",
      "color=c=0xff0000:s=320x360:r=25:d=4,format=rgb24",
      "-f",
      "lavfi",
      "-i",
      "color=c=0x0000ff:s=320x360:r=25:d=4,format=rgb24",
      "-filter_complex",
      "[0][1]hstack,format=rgb24",
      "-c:v",
      "png",
      clip,
    ]);
  });

  it("come from the same ffmpeg as the model-size frames, every still_interval_s x fps frames, at 640x360", async () => {
    const cfg = CAMERA_SCHEMA.parse({ id: "cam", url: `file://${clip}`, fps: 10, still_interval_s: 0.5, realtime: true, loop: true });
    const cam = createCamera(cfg, { log: memoryLogger().log, baseDir: tmp, width: 416, height: 256 });
    running.push(cam);
    await cam.start();
    const [f] = await takeFrames(cam, 1);
    expect([f!.width, f!.height]).toEqual([416, 256]);
    await waitFor(() => cam.stills.length === 1, "the first still", 30_000, 10);
    // It comes with its frame, not a still interval later (one encoder thread, no frame threading delay).
    expect(cam.stills[0]!.frameIndex).toBe(0);
    expect(Number(cam.health().frames_in)).toBeLessThan(5);
    await waitFor(() => cam.stills.length === 2, "two stills");
    const [a, b] = cam.stills;
    // Every 5th frame (0.5 s at 10 fps): the stills picture frames 5 apart.
    expect(b!.frameIndex - a!.frameIndex).toBe(5);
    expect(a!.frameIndex % 5).toBe(0);
    expect([b!.width, b!.height]).toEqual([640, 360]);
    const { data, info } = await sharp(b!.jpeg).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([640, 360]);
    const px = (x: number, y: number) => [...data.subarray((y * 640 + x) * 3, (y * 640 + x) * 3 + 3)];
    const [lr, , lb] = px(100, 180);
    const [rr, , rb] = px(540, 180);
    expect(lr).toBeGreaterThan(200);
    expect(lb).toBeLessThan(60);
    expect(rb).toBeGreaterThan(200);
    expect(rr).toBeLessThan(60);
  });

  it("show exactly the frame whose index they carry", async () => {
    // Each frame's red level is its number times 10: frame and still can be matched by colour.
    const counter = path.join(tmp, "counter.mkv");
    await ffmpeg(["-f", "lavfi", "-i", "nullsrc=s=160x90:r=10:d=2.5,geq=r='mod(N*10,250)':g=0:b=0,format=rgb24", "-c:v", "png", counter]);
    const cfg = CAMERA_SCHEMA.parse({
      id: "cam",
      url: `file://${counter}`,
      fps: 10,
      still_interval_s: 0.3,
      realtime: false,
      read_as_consumed: true,
      loop: false,
    });
    const cam = createCamera(cfg, { log: memoryLogger().log, baseDir: tmp, width: 160, height: 90 });
    running.push(cam);
    await cam.start();
    const red = new Map<number, number>();
    const seen = new Map<number, Buffer>();
    // Until the 25-frame clip has ended; a frame may be replaced before it is taken (not all are seen).
    while (cam.state !== "stopped" || cam.slot.peek()) {
      await Promise.race([cam.slot.next(), new Promise((r) => setTimeout(r, 200))]);
      const f = cam.slot.take();
      if (f) {
        red.set(f.index, f.data[(45 * 160 + 80) * 3]!);
        cam.slot.release(f);
      }
      for (const st of cam.stills) seen.set(st.frameIndex, st.jpeg);
    }
    for (const st of cam.stills) seen.set(st.frameIndex, st.jpeg);
    // Every 3rd frame (0.3 s at 10 fps) of frames 0..24; the last two at least are still kept.
    expect([...seen.keys()].every((i) => i % 3 === 0)).toBe(true);
    expect([...seen.keys()]).toEqual(expect.arrayContaining([21, 24]));
    let compared = 0;
    for (const [index, jpg] of seen) {
      if (!red.has(index)) continue;
      const { data } = await sharp(jpg).raw().toBuffer({ resolveWithObject: true });
      expect(red.get(index)).toBe(index * 10);
      expect(Math.abs(data[(45 * 160 + 80) * 3]! - index * 10), `still of frame ${index}`).toBeLessThanOrEqual(6);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(2);
  });

  it("are off with still_interval_s 0: one plain output, no still pipe", async () => {
    const cfg = CAMERA_SCHEMA.parse({ id: "cam", url: `file://${clip}`, fps: 10, still_interval_s: 0, realtime: false, loop: false });
    const cam = createCamera(cfg, { log: memoryLogger().log, baseDir: tmp });
    running.push(cam);
    await cam.start();
    await takeFrames(cam, 5);
    expect(cam.stills).toEqual([]);
  });
});
