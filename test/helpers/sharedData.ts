import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * The real test data (`../shared/data` by default; CITYEDGE_SHARED_DATA overrides it).
 * Returns undefined when it is missing, so suites can skip, and says so once. With
 * CITYEDGE_REQUIRE_SHARED_DATA=1 (set by .ci/run), missing data is an error instead.
 */
export function sharedDataDir(): string | undefined {
  const dir = path.resolve(ROOT, process.env.CITYEDGE_SHARED_DATA ?? "../shared/data");
  if (existsSync(dir)) return dir;
  if (process.env.CITYEDGE_REQUIRE_SHARED_DATA === "1") {
    throw new Error(`shared test data not found at ${dir} (CITYEDGE_SHARED_DATA) and CITYEDGE_REQUIRE_SHARED_DATA=1`);
  }
  console.warn(`[cityedge tests] shared test data not found at ${dir}: skipping the suites that need it (set CITYEDGE_SHARED_DATA)`);
  return undefined;
}

/** A file inside the shared data, or undefined when the data set is missing. */
export function sharedFile(rel: string): string | undefined {
  const dir = sharedDataDir();
  return dir ? path.join(dir, rel) : undefined;
}

export const REPO_ROOT = ROOT;
