import { writeFileSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { ConfigError, formatProblem } from "../../runtime/config/errors.js";
import { loadConfig } from "../../runtime/config/load.js";

/** Config files written into `dir` one after another (c0.yaml, c1.yaml …), and the problems of those that must fail. */
export function configFiles(dir: string): { write: (text: string) => string; problems: (text: string, env?: NodeJS.ProcessEnv) => string[] } {
  let n = 0;
  const write = (text: string): string => {
    const f = path.join(dir, `c${n++}.yaml`);
    writeFileSync(f, text);
    return f;
  };
  /** The formatted problems of a config that must fail, with the file's name replaced by F. */
  const problems = (text: string, env: NodeJS.ProcessEnv = {}): string[] => {
    const f = write(text);
    try {
      loadConfig(f, env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems.map((p) => formatProblem(p).replace(f, "F"));
    }
    throw new Error("expected the config to be rejected");
  };
  return { write, problems };
}
