import type { KeyObject } from "node:crypto";
import type { LatestFrameSlot } from "../../drivers/camera/frame.js";
import type { Still } from "../../drivers/camera/stills.js";
import type { Geometry } from "../detect/draw.js";
import { cameraPicture } from "../detect/picture.js";
import type { RecentObjects } from "../detect/recentObjects.js";
import type { PartContext } from "../part.js";
import { ModelStore } from "../modelUpdate/store.js";
import type { ModelSwapTarget } from "../modelUpdate/swap.js";
import { loadPublicKey } from "../modelUpdate/signature.js";
import { ModelUpdater } from "../modelUpdate/updater.js";
import type { DetectorPart } from "../detect/detectorPart.js";
import type { Part } from "../part.js";
import { CommandDispatcher } from "./dispatcher.js";
import { NonceStore } from "./nonceStore.js";
import { RateLimiter } from "./rateLimit.js";
import { reloadConfigCommand } from "./reloadConfig.js";
import { restartPipelineCommand, type PipelineControl } from "./restartPipeline.js";
import { snapshotCommand, type FrameSource } from "./snapshot.js";
import { bindCommand, type CommandSource } from "./types.js";
import { updateModelCommand } from "./updateModel.js";

export { CommandDispatcher } from "./dispatcher.js";
export { reloadConfigCommand } from "./reloadConfig.js";
export { restartPipelineCommand, type PipelineControl } from "./restartPipeline.js";
export { frameToJpeg, snapshotCommand, type FrameSource } from "./snapshot.js";
export { bindCommand, CommandError, type CommandHandler, type CommandSource } from "./types.js";
export { updateModelCommand } from "./updateModel.js";

export interface CommandDeps {
  /** The MQTT connection's subscription hook. */
  source: CommandSource;
  /** The inference registry's swap hook; without it update_model knows no models. */
  models?: ModelSwapTarget;
  /** The cameras; without them snapshot and restart_pipeline know no cameras. */
  cameras?: FrameSource & PipelineControl;
  /** The part behind `source` (the MQTT connection): the commands are rebuilt with it. */
  holds?: readonly Part[];
}

const NO_MODELS: ModelSwapTarget = {
  modelIds: () => [],
  swap: (id) => Promise.reject(new Error(`no model "${id}" runs in this daemon`)),
};
const NO_CAMERAS: FrameSource & PipelineControl = {
  cameraIds: () => [],
  picture: () => Promise.resolve(undefined),
  restartPipeline: (id) => Promise.reject(new Error(`no camera "${id}" runs in this daemon`)),
};

/** The remote commands: `<base>/cmd/<name>` answered on `<base>/cmd/<name>/response`. */
export function buildCommandParts(ctx: PartContext, deps: CommandDeps): Part[] {
  const cfg = ctx.config.commands;
  if (!cfg.enabled) return [];
  const log = ctx.log.child({ module: "commands" });
  const mu = cfg.model_update;
  let publicKey: KeyObject | undefined;
  let keyProblem: string | undefined;
  try {
    if (cfg.public_key !== undefined) publicKey = loadPublicKey(cfg.public_key, ctx.loaded.baseDir);
  } catch (err) {
    // Contained: signed commands are refused with this error, and the others still work
    // (reload_config included, unless it must be signed: then a fixed key needs a restart).
    keyProblem = (err as Error).message;
    log.error({ err }, "signed commands are refused until the public key is fixed");
  }
  const store = new ModelStore(ctx.dataDir);
  const updater = new ModelUpdater({
    store,
    target: deps.models ?? NO_MODELS,
    policy: { schemes: mu.allowed_schemes, hosts: mu.allowed_hosts, allowPrivate: mu.allow_private_addresses },
    minFreeBytes: mu.min_free_bytes,
    maxBytes: mu.max_bytes,
    timeoutMs: mu.download_timeout_ms,
    keepVersions: mu.keep_versions,
    probationMs: mu.probation_ms,
    metrics: ctx.metrics,
    log,
  });
  const cameras = deps.cameras ?? NO_CAMERAS;
  // The key's contents belong to the slice: a reload after fixing the key file applies it.
  const key = publicKey ? publicKey.export({ type: "spki", format: "pem" }).toString() : (keyProblem ?? null);
  const dispatcher = new CommandDispatcher({
    topics: ctx.topics,
    bus: ctx.bus,
    source: deps.source,
    log,
    metrics: ctx.metrics,
    allow: cfg.allow,
    problems: keyProblem ? [keyProblem] : [],
    statements: {
      ...(publicKey ? { publicKey } : {}),
      ...(keyProblem ? { keyProblem } : {}),
      signed: cfg.signed,
      deviceId: ctx.config.device_id,
      fleets: cfg.fleets,
      maxValidityMs: cfg.statement_max_validity_s * 1000,
      skewMs: cfg.clock_skew_s * 1000,
      nonces: new NonceStore(ctx.dataDir),
      dataDir: ctx.dataDir,
    },
    rateLimiter: new RateLimiter(cfg.rate_limits),
    scrub: ctx.scrub,
    onStart: () => {
      try {
        const removed = store.cleanStaging();
        if (removed.length > 0) log.warn({ removed }, "removed downloads left over from an interrupted model update");
      } catch (err) {
        log.error({ err }, "cannot clean up interrupted model downloads");
      }
    },
    onStop: () => updater.abort(),
    commands: [
      bindCommand(reloadConfigCommand({ configFile: ctx.loaded.file, reload: ctx.reload })),
      bindCommand(updateModelCommand(updater)),
      bindCommand(snapshotCommand(cameras)),
      bindCommand(restartPipelineCommand(cameras)),
    ],
  });
  return [ctx.part(dispatcher, { slice: { commands: cfg, key }, deps: deps.holds ?? [] })];
}

/**
 * Adapts the MQTT connection's `subscribe(filter, handler)` (which has no unsubscribe: the
 * connection is rebuilt on reload) to a CommandSource whose unsubscribe silences the handler.
 */
export function commandSourceOf(conn: { subscribe(filter: string, handler: (topic: string, payload: Buffer) => void): void }): CommandSource {
  return {
    subscribeCommands(filter, onMessage) {
      let live = true;
      conn.subscribe(filter, (topic, payload) => {
        if (live) onMessage(topic, payload);
      });
      return () => {
        live = false;
      };
    },
  };
}

/** A detector as update_model sees it. */
type SwappablePart = Pick<DetectorPart, "id" | "swapModel" | "health">;

/**
 * update_model's view of the detectors: each `detector:<model id>` part swaps its own session.
 * `detectors` is asked at the time of use, so a detector rebuilt by a reload is the one swapped.
 */
export function swapTargetOf(detectors: () => readonly SwappablePart[]): ModelSwapTarget {
  const byId = () => new Map(detectors().map((d) => [d.id, d]));
  return {
    modelIds: () => [...byId().keys()],
    runStats: (id) => {
      const h = byId().get(id)?.health();
      // The detector counts a run only when it succeeded, and every failed frame in `errors`.
      if (!h) return undefined;
      return { runs: h.runs, errors: h.errors, ...(h.error !== undefined ? { lastError: h.error } : {}) };
    },
    swap: (id, version) => {
      const d = byId().get(id);
      return d ? d.swapModel(version) : Promise.reject(new Error(`no detector runs model "${id}"`));
    },
  };
}

/** A camera as snapshot and restart_pipeline see it. */
type CameraPart = Part & { readonly id: string; slot: LatestFrameSlot; readonly stills: readonly Still[] };

/** What a picture's boxes and lines come from: what detection found on recent frames, and the lines and zones it runs with. */
export interface DetectionView {
  readonly recent: RecentObjects;
  geometry(cameraId: string): Geometry | undefined;
}

/**
 * snapshot's and restart_pipeline's view of the cameras: a picture of each (a still at its own
 * resolution when it has them, with the boxes of that frame and the lines and zones its pipeline
 * runs with, from `view`), and a restart of one camera part (its ffmpeg) through the daemon,
 * while the others keep running. `cameras` is asked at the time of use, so cameras added or
 * rebuilt by a reload are found.
 */
export function cameraControlOf(
  cameras: () => readonly CameraPart[],
  restart: (name: string) => Promise<void>,
  view?: DetectionView,
): FrameSource & PipelineControl {
  const find = (id: string) => cameras().find((c) => c.id === id);
  return {
    cameraIds: () => cameras().map((c) => c.id),
    picture: async (id, o) => {
      const cam = find(id);
      if (!cam) return undefined;
      const g = o.boxes ? view?.geometry(id) : undefined;
      const source = {
        stills: cam.stills,
        // A copy: the frame's buffer goes back to the camera's pool once newer frames arrive.
        latestFrame: () => {
          const f = cam.slot.latest;
          return f && { ...f, data: Buffer.from(f.data) };
        },
      };
      return cameraPicture(id, source, view?.recent, { boxes: o.boxes, quality: o.quality, ...(g ? { geometry: g } : {}) });
    },
    restartPipeline: async (id) => {
      const cam = find(id);
      if (!cam) throw new Error(`no camera "${id}" runs in this daemon`);
      await restart(cam.name);
    },
  };
}
