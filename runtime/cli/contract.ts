import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { flag, type CliCommand } from "./command.js";

export const contractCommand: CliCommand = {
  name: "contract",
  synopsis: "contract [--write DIR]",
  summary: "print the MQTT contract (AsyncAPI), or write it and its JSON Schemas into DIR",
  help: `Usage: cityedge contract [--write DIR]

Prints the AsyncAPI document generated from the contract module (runtime/contract/). With
--write, writes asyncapi.yaml and schemas/*.schema.json into DIR (runtime/contract in this
repository), removes schema files the contract no longer has, and names the files it changed.`,
  async run(args) {
    const { contractFiles } = await import("../contract/generate.js");
    const files = contractFiles();
    const dir = flag(args, "--write");
    if (dir === undefined) {
      process.stdout.write(files.find((f) => f.path === "asyncapi.yaml")!.text);
      return 0;
    }
    mkdirSync(path.join(dir, "schemas"), { recursive: true });
    const changed: string[] = [];
    for (const f of files) {
      const file = path.join(dir, f.path);
      if (existsSync(file) && readFileSync(file, "utf8") === f.text) continue;
      writeFileSync(file, f.text);
      changed.push(f.path);
    }
    const wanted = new Set(files.map((f) => f.path));
    for (const name of readdirSync(path.join(dir, "schemas"))) {
      if (!name.endsWith(".schema.json") || wanted.has(`schemas/${name}`)) continue;
      rmSync(path.join(dir, "schemas", name));
      changed.push(`schemas/${name} (removed)`);
    }
    process.stdout.write(changed.length === 0 ? `the contract in ${dir} is current\n` : `updated in ${dir}: ${changed.join(", ")}\n`);
    return 0;
  },
};
