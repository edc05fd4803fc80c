import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { createReadStream, readFileSync, writeFileSync } from "node:fs";
import { COMMAND_NAMES, type CommandName } from "../config/sections/commands.js";
import { loadPrivateKey, publicPemOf, signStatement } from "../commands/statement.js";
import { EXIT_FATAL, flag, usageError, type CliCommand } from "./command.js";

/** "90s", "15m", "2h", "1d" → ms. */
function duration(text: string): number | undefined {
  const m = /^(\d+)(s|m|h|d)$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

export const signCommand: CliCommand = {
  name: "sign",
  synopsis: "sign --key KEY --device ID COMMAND …",
  summary: "make a signed command for a device or fleet (or a key pair with --new-key)",
  help: `Usage: cityedge sign --key PRIVATE.pem (--device ID | --fleet NAME) COMMAND [options]
       cityedge sign --new-key PRIVATE.pem

Prints one command request, signed, as a line of JSON for <base>/cmd/COMMAND, e.g.
  mosquitto_pub -t cityedge/junction-0042/cmd/update_model -q 1 \\
    -m "$(cityedge sign --key ops.pem --device junction-0042 update_model \\
          --model vehicles --version 1.3.0 --file vehicles-1.3.0.onnx \\
          --url https://models.example.com/vehicles-1.3.0.onnx)"

The signature (Ed25519) covers a canonical statement: the command, the device or fleet, every
parameter below except --url, issued_at, expires_at and a fresh nonce. The device verifies it with
commands.public_key before it does anything, refuses it after expires_at or a second time, and
refuses an update_model whose version is not newer than the newest it accepted for the model.

COMMAND is one of ${COMMAND_NAMES.join(", ")}.
  --key FILE            the Ed25519 private key (PEM; openssl genpkey -algorithm ed25519, or --new-key)
  --device ID           the device the command is for; or
  --fleet NAME          a fleet (the devices that list it in commands.fleets)
  --valid-for DURATION  how long it is accepted: 90s, 15m, 2h, 1d (default 1h)
  --id ID               the request id echoed in the answer (default: made up)
  update_model:   --model ID --version V (--sha256 HEX | --file MODEL.onnx) --url URL [--variant fp32|fp16|int8|int8_sym] [--allow-downgrade]
  snapshot:       --camera ID [--quality 10..100] [--boxes]
  restart_pipeline: --camera ID
  reload_config:  (no parameters)

--new-key FILE writes a new private key to FILE (mode 0600) and its public key to FILE.pub (put
that one in commands.public_key on the devices).

Exit codes: 0 printed, 64 a bad command line, 1 the key or the model file cannot be read.`,
  async run(args) {
    const newKey = flag(args, "--new-key");
    if (newKey !== undefined) {
      const { privateKey } = generateKeyPairSync("ed25519");
      writeFileSync(newKey, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
      writeFileSync(`${newKey}.pub`, publicPemOf(privateKey), { mode: 0o644, flag: "wx" });
      process.stdout.write(`wrote ${newKey} (keep it offline) and ${newKey}.pub (commands.public_key)\n`);
      return 0;
    }
    const keyFile = flag(args, "--key");
    if (keyFile === undefined) return usageError(signCommand, "missing --key FILE (or --new-key FILE)");
    const device = flag(args, "--device");
    const fleet = flag(args, "--fleet");
    if ((device === undefined) === (fleet === undefined)) return usageError(signCommand, "give exactly one of --device and --fleet");
    const withValue = new Set([
      "--key",
      "--device",
      "--fleet",
      "--valid-for",
      "--id",
      "--model",
      "--version",
      "--sha256",
      "--file",
      "--url",
      "--variant",
      "--camera",
      "--quality",
    ]);
    const positional = args.filter((a, i) => !a.startsWith("-") && !withValue.has(args[i - 1] ?? ""));
    const command = positional[0] as CommandName | undefined;
    if (command === undefined || !COMMAND_NAMES.includes(command))
      return usageError(signCommand, `COMMAND must be one of ${COMMAND_NAMES.join(", ")}`);
    const validFor = duration(flag(args, "--valid-for") ?? "1h");
    if (validFor === undefined) return usageError(signCommand, "--valid-for must be like 90s, 15m, 2h or 1d");
    const fields: Record<string, string | number | boolean> = {};
    const need = (name: string): string | undefined => flag(args, `--${name}`);
    try {
      if (command === "update_model") {
        for (const k of ["model", "version", "url"]) {
          const v = need(k);
          if (v === undefined) return usageError(signCommand, `update_model needs --${k}`);
          fields[k] = v;
        }
        const file = need("file");
        const sha = need("sha256") ?? (file !== undefined ? await sha256File(file) : undefined);
        if (sha === undefined) return usageError(signCommand, "update_model needs --sha256 HEX or --file MODEL.onnx");
        fields.sha256 = sha.toLowerCase();
        const variant = need("variant");
        if (variant !== undefined) fields.variant = variant;
        if (args.includes("--allow-downgrade")) fields.allow_downgrade = true;
      } else if (command === "snapshot" || command === "restart_pipeline") {
        const camera = need("camera");
        if (camera === undefined) return usageError(signCommand, `${command} needs --camera ID`);
        fields.camera = camera;
        const quality = need("quality");
        if (quality !== undefined) {
          if (command !== "snapshot" || !/^\d+$/.test(quality)) return usageError(signCommand, "--quality is a number, for snapshot only");
          fields.quality = Number(quality);
        }
        if (args.includes("--boxes")) {
          if (command !== "snapshot") return usageError(signCommand, "--boxes is for snapshot only");
          fields.boxes = true;
        }
      }
      const key = loadPrivateKey(readFileSync(keyFile, "utf8"), keyFile);
      const now = Date.now();
      const nonce = randomBytes(16).toString("base64url");
      Object.assign(fields, device !== undefined ? { device } : { fleet: fleet! }, { issued_at: iso(now), expires_at: iso(now + validFor), nonce });
      const signature = signStatement(key, command, fields);
      const id = flag(args, "--id") ?? `signed-${nonce.slice(0, 12)}`;
      process.stdout.write(`${JSON.stringify({ id, ...fields, signature })}\n`);
      return 0;
    } catch (err) {
      process.stderr.write(`cityedge sign: ${(err as Error).message}\n`);
      return EXIT_FATAL;
    }
  },
};
