import { existsSync } from "node:fs";

/**
 * A file from a Debian data package that .ci/run installs (e.g. gretl-data). Returns undefined
 * when it is missing, so a suite can skip, and says so; in CI (CITYEDGE_REQUIRE_SHARED_DATA=1)
 * a missing package is an error, as missing shared data is.
 */
export function debianFile(file: string, pkg: string): string | undefined {
  if (existsSync(file)) return file;
  if (process.env.CITYEDGE_REQUIRE_SHARED_DATA === "1") throw new Error(`${file} not found: install the Debian package ${pkg} (.ci/run does)`);
  console.warn(`[cityedge tests] ${file} not found: skipping the tests that need Debian's ${pkg} (apt-get install ${pkg})`);
  return undefined;
}
