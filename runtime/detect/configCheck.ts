import type { ConfigProblem } from "../config/errors.js";
import type { LoadedConfig } from "../config/load.js";
import { resolvePath } from "../config/load.js";
import { syntheticModelWarning } from "./domain.js";
import { checkModel, type ModelCheck } from "./modelCheck.js";

type Locate = (path: readonly PropertyKey[], message: string) => ConfigProblem;

/**
 * What check-config adds to the schema's checks: every model's manifest opened and checked
 * against its files and graph, and every label a camera names looked up in its model's labels.
 * Problems sit at the config key they come from; warnings do not make the config invalid.
 */
export async function checkConfigModels(loaded: LoadedConfig, locate: Locate): Promise<{ problems: ConfigProblem[]; warnings: ConfigProblem[] }> {
  const { config } = loaded;
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const checks = new Map<string, ModelCheck>();
  for (const [i, model] of config.models.entries()) {
    const check = await checkModel(resolvePath(loaded, model.manifest));
    checks.set(model.id, check);
    for (const p of check.problems) problems.push(locate(["models", i, "manifest"], `${model.manifest}: ${p}`));
  }
  for (const [i, cam] of config.cameras.entries()) {
    if (cam.model === undefined) continue;
    const m = checks.get(cam.model)?.detection;
    if (!m) continue;
    const known = (label: string) => m.labels.includes(label);
    const shown = `${m.labels.slice(0, 12).join(", ")}${m.labels.length > 12 ? ", …" : ""}`;
    const unknown = (where: PropertyKey[], labels: readonly string[] | undefined) =>
      labels?.forEach((l, j) => {
        if (!known(l)) problems.push(locate([...where, j], `unknown label "${l}" (model ${cam.model} has: ${shown})`));
      });
    const d = cam.detection;
    unknown(["cameras", i, "detection", "classes"], d.classes);
    d.lines.forEach((l, j) => unknown(["cameras", i, "detection", "lines", j, "classes"], l.classes));
    d.zones.forEach((z, j) => unknown(["cameras", i, "detection", "zones", j, "classes"], z.classes));
    d.class_merge?.groups.forEach((g, j) => unknown(["cameras", i, "detection", "class_merge", "groups", j], g));
    const warning = cam.enabled && d.enabled ? syntheticModelWarning(cam, cam.model, m) : undefined;
    if (warning) warnings.push(locate(["cameras", i, "model"], warning));
  }
  return { problems, warnings };
}
