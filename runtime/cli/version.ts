import { packageVersion } from "../version.js";
import type { CliCommand } from "./command.js";

export const versionCommand: CliCommand = {
  name: "version",
  synopsis: "version",
  summary: "print the version",
  help: "Usage: cityedge version\n\nPrints the package version (also: cityedge --version).",
  run() {
    process.stdout.write(`${packageVersion()}\n`);
    return Promise.resolve(0);
  },
};
