import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Page } from "puppeteer-core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { freePort } from "../../bench/benchProcess.js";
import { ARTIFACTS, buildConsole, CHROMIUM, TestBrowser, type PageLog } from "./browser.js";
import { DaemonProcess } from "../helpers/daemonProcess.js";
import { REPO_ROOT } from "../helpers/sharedData.js";
import { Subscriber, type Received } from "../helpers/subscriber.js";

const DEMO_VIDEO = path.join(REPO_ROOT, "models/synthetic/demo.mp4");
const VEHICLES = path.join(REPO_ROOT, "models/vehicles/manifest.json");
const TOKEN = "console-test-token-0123456789";

/** The demo's camera and line, in a config with comments the editor must keep. */
function config(o: { dir: string; httpPort: number; brokerPort: number; host?: string; auth?: boolean }): string {
  return `# The console's test device.
device_id: console-test
data_dir: ${path.join(o.dir, "data")}
log_level: info

mqtt:
  url: mqtt://127.0.0.1:${o.brokerPort}
# An embedded broker, as npm start has.
broker:
  enabled: true
  host: 127.0.0.1
  port: ${o.brokerPort}

http:
  host: ${o.host ?? "127.0.0.1"}
  port: ${o.httpPort}
  health_publish_ms: 0${o.auth ? "\n  auth:\n    token: ${env:CONSOLE_TOKEN}" : ""}

cameras:
  # The synthetic junction, looped in real time.
  - id: demo-cam
    url: file://${DEMO_VIDEO}
    fps: 10
    model: vehicles
    detection:
      lines:
        # Across the road: the video's ground truth has 35 crossings per loop.
        - id: main-road
          from: [0.021, 0.378]
          to: [0.6816, 0.4371]
      counts_interval_s: 2

models:
  - id: vehicles
    manifest: ${VEHICLES}
    providers: [cpu]
    threads: 2
`;
}

interface CountsLine {
  line_id: string;
  counts: Record<string, { in: number; out: number }>;
}
const crossings = (m: Received, line?: string): number =>
  (m.payload.lines as CountsLine[])
    .filter((l) => line === undefined || l.line_id === line)
    .reduce((n, l) => n + Object.values(l.counts).reduce((a, c) => a + c.in + c.out, 0), 0);

/** Canvas figures read in the page in one go: the picture's spread of brightness and a fingerprint of its pixels. */
async function canvasFigures(page: Page): Promise<{ frame: number; std: number; hash: number; objects: number }> {
  return page.evaluate(() => {
    const lc = window.cityedgeConsole!.live.get("demo-cam")!;
    const canvas = document.querySelector<HTMLCanvasElement>("canvas.live")!;
    const { data } = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height);
    let sum = 0;
    let sq = 0;
    let hash = 0;
    const n = data.length / 4;
    for (let i = 0; i < data.length; i += 4) {
      const y = 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!;
      sum += y;
      sq += y * y;
      hash = (hash * 31 + data[i]!) >>> 0;
    }
    const mean = sum / n;
    return { frame: lc.lastFrame?.frame ?? -1, std: Math.sqrt(sq / n - mean * mean), hash, objects: lc.lastFrame?.objects.length ?? 0 };
  });
}

const errorsOf = (log: PageLog): string[] => log.errors.map((e) => e.text);

interface CameraState {
  id: string;
  lines: { id: string }[];
  health: { restarts: number; frames_in: number };
}
async function cameraState(url: string): Promise<CameraState> {
  const r = (await (await fetch(`${url}api/cameras`)).json()) as { cameras: CameraState[] };
  return r.cameras.find((c) => c.id === "demo-cam")!;
}

describe.skipIf(!CHROMIUM)("the web console in chromium, on the demo camera", () => {
  let dir: string;
  let configFile: string;
  let daemon: DaemonProcess;
  let browser: TestBrowser;
  let page: Page;
  let log: PageLog;
  let counts: Subscriber;
  let url: string;

  beforeAll(async () => {
    buildConsole();
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-console-"));
    const [httpPort, brokerPort] = [await freePort(), await freePort()];
    configFile = path.join(dir, "cityedge.yaml");
    writeFileSync(configFile, config({ dir, httpPort, brokerPort }));
    daemon = DaemonProcess.cli(configFile).start();
    await daemon.waitForLog(/"msg":"web console at (http:\/\/127\.0\.0\.1:\d+\/)/, 60_000);
    url = /"msg":"web console at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(daemon.log)![1]!;
    counts = await Subscriber.connect(`mqtt://127.0.0.1:${brokerPort}`, "cityedge/console-test/cameras/demo-cam/counts");
    browser = await TestBrowser.launch();
    ({ page, log } = await browser.page());
  });

  afterAll(async () => {
    await browser?.close();
    await counts?.close();
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints its URL, and the page loads with no console errors", async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(() => (window.cityedgeConsole?.live.get("demo-cam")?.frames ?? 0) > 0, { timeout: 60_000 });
    expect(await page.title()).toBe("cityedge · console-test");
    expect(errorsOf(log)).toEqual([]);
    await browser.screenshot(page, "01-cameras.png");
  });

  it("shows live frames on the canvas that are not blank and keep changing", async () => {
    const a = await canvasFigures(page);
    await page.waitForFunction(
      (f: number) => (window.cityedgeConsole!.live.get("demo-cam")!.lastFrame?.frame ?? 0) >= f + 5,
      { timeout: 30_000 },
      a.frame,
    );
    const b = await canvasFigures(page);
    // A picture of a street, not a flat colour.
    expect(a.std).toBeGreaterThan(15);
    expect(b.std).toBeGreaterThan(15);
    expect(b.frame).toBeGreaterThan(a.frame);
    expect(b.hash).not.toBe(a.hash);
  });

  it("draws each frame's boxes over that frame, in the track's colour", async () => {
    // Header and pixels read together, between two frames: the boxes are those of the picture
    // shown. Asked again at each animation frame until a picture has a box tall enough to sample.
    const handle = await page.waitForFunction(
      () => {
        const lc = window.cityedgeConsole!.live.get("demo-cam")!;
        const canvas = document.querySelector<HTMLCanvasElement>("canvas.live")!;
        const ctx = canvas.getContext("2d")!;
        const palette = ["#ff3b30", "#34c759", "#007aff", "#ff9500", "#af52de", "#00c7be", "#ffcc00", "#ff2d55"];
        const results = (lc.lastFrame?.objects ?? []).map((o) => {
          const hex = palette[(o.track_id ?? o.class_id) % palette.length]!;
          const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
          // Along the lower part of the box's left edge: a box at the top of the picture has its label inside, over the upper part.
          // The stroke (about 2 px) is centred on the edge: one of the columns around it is covered in full.
          const x = Math.floor(o.box[0] * canvas.width);
          const y1 = Math.round(o.box[1] * canvas.height);
          const y2 = Math.round(o.box[3] * canvas.height);
          let match = 0;
          let all = 0;
          for (let y = y1 + Math.round((y2 - y1) * 0.6); y < y2 - 2; y++) {
            all++;
            for (const cx of [x - 1, x, x + 1]) {
              const p = ctx.getImageData(cx, y, 1, 1).data;
              if (Math.abs(p[0]! - want[0]!) + Math.abs(p[1]! - want[1]!) + Math.abs(p[2]! - want[2]!) < 60) {
                match++;
                break;
              }
            }
          }
          return { label: o.label, share: all > 0 ? match / all : 0, height: y2 - y1 };
        });
        const tall = results.filter((r) => r.height > 40);
        return tall.length > 0 ? tall : false;
      },
      { timeout: 30_000, polling: "raf" },
    );
    const hit = (await handle.jsonValue()) as { label: string; share: number; height: number }[];
    expect(hit.length).toBeGreaterThan(0);
    // Most box edges are in their colour (another box or a label may cover part of one).
    const good = hit.filter((r) => r.share > 0.8);
    expect(good.length, JSON.stringify(hit)).toBeGreaterThanOrEqual(Math.ceil(hit.length / 2));
    await browser.screenshot(page, "02-boxes.png");
  });

  it("serves a snapshot at the camera's resolution with the boxes, labels and line drawn", async () => {
    const res = await fetch(`${url}api/cameras/demo-cam/snapshot.jpg?boxes=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/jpeg");
    expect(res.headers.get("x-cityedge-resolution")).toBe("camera");
    const frame = Number(res.headers.get("x-cityedge-frame"));
    expect(Math.abs(Number(res.headers.get("x-cityedge-boxes-frame")) - frame)).toBeLessThanOrEqual(30);
    const jpeg = Buffer.from(await res.arrayBuffer());
    const meta = await sharp(jpeg).metadata();
    // The demo video is 640x360; the model sees 416x234 of it.
    expect([meta.width, meta.height]).toEqual([640, 360]);
    await sharp(jpeg).png().toFile(path.join(ARTIFACTS, "03-snapshot-boxes.png"));
    // The counting line is drawn in its yellow along from→to.
    const { data } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
    let yellow = 0;
    for (let i = 0; i <= 20; i++) {
      const x = Math.round((0.1 + 0.03 * i) * 640);
      const yLine = (0.378 + ((0.4371 - 0.378) * (x / 640 - 0.021)) / (0.6816 - 0.021)) * 360;
      for (let dy = -2; dy <= 2; dy++) {
        const o = (Math.round(yLine + dy) * 640 + x) * 3;
        if (data[o]! > 200 && data[o + 1]! > 170 && data[o + 2]! < 90) {
          yellow++;
          break;
        }
      }
    }
    // Most of it: a box drawn over the line may hide a few samples.
    expect(yellow).toBeGreaterThanOrEqual(14);
  });

  it("dragging the line's ends saves the config file with its comments, only that camera's pipeline restarts, and the next counts use the new line", async () => {
    // Before: the line across the road counts traffic.
    await counts.waitFor("4 counts messages", (m) => m.length >= 4, 30_000);
    expect(counts.messages.slice(-4).reduce((n, m) => n + crossings(m, "main-road"), 0)).toBeGreaterThan(0);

    await page.evaluate(() => (location.hash = "#editor"));
    await page.waitForFunction(() => document.querySelector<HTMLCanvasElement>("canvas.editor-canvas")?.dataset.width === "640", { timeout: 30_000 });
    await browser.screenshot(page, "04-editor.png");
    const before = readFileSync(configFile, "utf8");

    // Drag both ends onto the grass, where nothing moves, and rename the line.
    const drag = async (point: "from" | "to", to: [number, number]) => {
      const hs = await page.evaluate(() => window.cityedgeConsole!.editor.handles());
      const h = hs.find((x) => x.kind === "line" && x.index === 0 && x.point === point)!;
      const box = (await (await page.$("canvas.editor-canvas"))!.boundingBox())!;
      await page.mouse.move(h.x, h.y);
      await page.mouse.down();
      await page.mouse.move(box.x + to[0] * box.width, box.y + to[1] * box.height, { steps: 12 });
      await page.mouse.up();
    };
    await drag("from", [0.86, 0.88]);
    await drag("to", [0.97, 0.93]);
    const name = (await page.$("input.name[data-kind=line]"))!;
    await name.click({ clickCount: 3 });
    await name.type("on-the-grass");
    await browser.screenshot(page, "05-editor-moved.png");

    const cameraBefore = await cameraState(url);
    await page.click("#save");
    await page.waitForFunction(() => /^applied/.test(document.querySelector(".editor .status")?.textContent ?? ""), { timeout: 90_000 });
    const appliedAt = Date.now();
    await browser.screenshot(page, "06-editor-applied.png");
    // A reload by difference: the camera's pipeline restarted, and nothing else (its ffmpeg ran on).
    await daemon.waitForLog(/"restarted":\["pipeline:demo-cam"\],"msg":"console: reload applied"/, 10_000);
    const cameraAfter = await cameraState(url);
    expect(cameraAfter.lines.map((l) => l.id)).toEqual(["on-the-grass"]);
    expect(cameraAfter.health.restarts).toBe(cameraBefore.health.restarts);
    expect(cameraAfter.health.frames_in).toBeGreaterThan(cameraBefore.health.frames_in);

    // The file: the three lines of the line changed, every other line (comments included) as it was.
    const after = readFileSync(configFile, "utf8");
    const a = before.split("\n");
    const b = after.split("\n");
    expect(b.length).toBe(a.length);
    const diff = a.map((l, i) => [l, b[i]!] as const).filter(([x, y]) => x !== y);
    expect(diff.map(([x]) => x)).toEqual(["        - id: main-road", "          from: [0.021, 0.378]", "          to: [0.6816, 0.4371]"]);
    expect(diff.map(([, y]) => y)).toEqual([
      "        - id: on-the-grass",
      expect.stringMatching(/^ {10}from: \[0\.8\d*, 0\.8\d*\]$/),
      expect.stringMatching(/^ {10}to: \[0\.9\d*, 0\.9\d*\]$/),
    ]);
    expect(after).toContain("        # Across the road: the video's ground truth has 35 crossings per loop.\n");

    // The next counts messages come from the new line, and nothing crosses it on the grass.
    const isNew = (m: Received) =>
      Date.parse(String(m.payload.interval_start)) >= appliedAt - 5000 && (m.payload.lines as CountsLine[])[0]?.line_id === "on-the-grass";
    await counts.waitFor("3 counts messages of the new line", (ms) => ms.filter(isNew).length >= 3, 60_000);
    const fresh = counts.messages.filter(isNew);
    for (const m of fresh) expect((m.payload.lines as CountsLine[]).map((l) => l.line_id)).toEqual(["on-the-grass"]);
    expect(fresh.reduce((n, m) => n + crossings(m), 0)).toBe(0);
  });

  it("shows the moved line live, with its counts", async () => {
    await page.evaluate(() => (location.hash = "#cameras"));
    await page.waitForFunction(
      () => {
        const lc = window.cityedgeConsole!.live.get("demo-cam");
        return lc !== undefined && lc.frames > 3 && lc.info.lines[0]?.id === "on-the-grass";
      },
      { timeout: 60_000 },
    );
    const rows = await page.$$eval("table.counts tbody tr", (trs) => trs.map((tr) => (tr as HTMLElement).dataset.line));
    expect(rows).toEqual(["on-the-grass"]);
    await browser.screenshot(page, "07-cameras-after-move.png");
    // The endpoint ran on through the reload: not one failed request or socket.
    expect(errorsOf(log)).toEqual([]);
  });

  it("charts the counts per line and class from the history store", async () => {
    await page.evaluate(() => (location.hash = "#charts"));
    await page.waitForSelector(".chart[data-camera=demo-cam] .plot[data-line=main-road] canvas", { timeout: 30_000 });
    const res = await (await fetch(`${url}api/cameras/demo-cam/counts?minutes=5`)).json();
    const h = res as { step_ms: number; t: number[]; series: { line: string; label: string; dir: string; values: (number | null)[] }[] };
    // Five minutes in 2 s intervals: one point per counts message.
    expect(h.step_ms).toBe(2000);
    expect(h.t.length).toBeGreaterThan(5);
    const main = h.series.filter((s) => s.line === "main-road");
    expect(main.reduce((n, s) => n + s.values.reduce<number>((a, v) => a + (v ?? 0), 0), 0)).toBeGreaterThan(0);
    for (const s of main) expect(["car", "bus", "truck", "person", "bicycle"]).toContain(s.label);
    await browser.screenshot(page, "08-charts.png");
  });

  it("shows parts, providers and model versions, outbox and uplink on the health page, with a link to /metrics", async () => {
    await page.evaluate(() => (location.hash = "#health"));
    await page.waitForFunction(() => (document.querySelector(".health")?.textContent ?? "").includes("detector:vehicles"), { timeout: 30_000 });
    const text = await page.$eval(".health", (e) => e.textContent ?? "");
    for (const want of ["camera:demo-cam", "outbox depth", "MQTT", "cpu", "int8", "shipped"]) expect(text).toContain(want);
    expect(await page.$eval(".health a[href='/metrics']", (a) => a.textContent)).toBe("/metrics");
    await browser.screenshot(page, "09-health.png");
    expect(errorsOf(log)).toEqual([]);
  });
});

describe.skipIf(!CHROMIUM)("the web console beyond loopback", () => {
  let dir: string;
  let daemon: DaemonProcess;
  let browser: TestBrowser;
  let port: number;

  beforeAll(async () => {
    buildConsole();
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-console-auth-"));
    [port] = [await freePort()];
    const file = path.join(dir, "cityedge.yaml");
    writeFileSync(file, config({ dir, httpPort: port, brokerPort: await freePort(), host: "0.0.0.0", auth: true }));
    daemon = DaemonProcess.cli(file, { CONSOLE_TOKEN: TOKEN }).start();
    await daemon.waitForLog(/"msg":"web console at/, 60_000);
    browser = await TestBrowser.launch();
  });

  afterAll(async () => {
    await browser?.close();
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("asks for the token, then serves the console with live frames over an authenticated WebSocket", async () => {
    expect((await fetch(`http://127.0.0.1:${port}/api/cameras`)).status).toBe(401);
    expect(daemon.log).not.toContain(TOKEN);
    const { page, log } = await browser.page();
    await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: "load" });
    expect(new URL(page.url()).pathname).toBe("/login");
    await browser.screenshot(page, "10-login.png");
    await page.type("input[name=token]", "not-the-token-at-all");
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    expect(await page.$eval("p.err", (e) => e.textContent)).toBe("Wrong token.");
    await page.type("input[name=token]", TOKEN);
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    await page.waitForFunction(() => (window.cityedgeConsole?.live.get("demo-cam")?.frames ?? 0) > 2, { timeout: 60_000 });
    await browser.screenshot(page, "11-after-login.png");
    // The wrong token was answered with 401: the one console error expected.
    expect(log.errors.map((e) => e.text).filter((t) => !/status of 401/.test(t))).toEqual([]);

    const cookies = await page.cookies();
    const session = cookies.find((c) => c.name === "cityedge_session")!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    const ws = (headers: Record<string, string>) =>
      new Promise<number | "open">((resolve) => {
        const s = new WebSocket(`ws://127.0.0.1:${port}/api/cameras/demo-cam/live`, { headers });
        s.on("open", () => {
          s.close();
          resolve("open");
        });
        s.on("unexpected-response", (_q, r) => resolve(r.statusCode ?? 0));
        s.on("error", () => resolve(0));
      });
    const cookie = `cityedge_session=${session.value}`;
    expect(await ws({ cookie, origin: `http://127.0.0.1:${port}` })).toBe("open");
    // A page on another site, with the browser's cookie, is refused by its Origin.
    expect(await ws({ cookie, origin: "http://evil.example" })).toBe(403);
    expect(await ws({ origin: `http://127.0.0.1:${port}` })).toBe(401);
  });
});
