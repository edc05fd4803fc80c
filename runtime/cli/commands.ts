import { benchCommand } from "./bench.js";
import { checkConfigCommand } from "./checkConfig.js";
import type { CliCommand } from "./command.js";
import { configReferenceCommand } from "./configReference.js";
import { doctorCommand } from "./doctor.js";
import { forecastCommand } from "./forecast.js";
import { contractCommand } from "./contract.js";
import { detectCommand } from "./detect.js";
import { modelsCommand } from "./models.js";
import { runCommand } from "./run.js";
import { signCommand } from "./sign.js";
import { versionCommand } from "./version.js";

/** Every `cityedge` sub-command, in the order `cityedge --help` lists them. */
export const COMMANDS: readonly CliCommand[] = [
  runCommand,
  checkConfigCommand,
  doctorCommand,
  versionCommand,
  benchCommand,
  configReferenceCommand,
  forecastCommand,
  contractCommand,
  detectCommand,
  modelsCommand,
  signCommand,
];
