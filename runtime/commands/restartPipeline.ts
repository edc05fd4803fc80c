import type { z } from "zod";
import { COMMAND_PARAMS } from "../contract/index.js";
import { CommandError, type CommandHandler } from "./types.js";

/** What restart_pipeline needs from the cameras. */
export interface PipelineControl {
  cameraIds(): string[];
  /** Restarts a camera's pipeline (its ffmpeg and inference loop); resolves when it runs again. */
  restartPipeline(cameraId: string): Promise<void>;
}

const PARAMS = COMMAND_PARAMS.restart_pipeline;

/** `restart_pipeline`: restarts one camera's pipeline without touching the others. */
export function restartPipelineCommand(control: PipelineControl): CommandHandler<z.output<typeof PARAMS>> {
  return {
    name: "restart_pipeline",
    params: PARAMS,
    async run({ camera }) {
      const ids = control.cameraIds();
      if (!ids.includes(camera)) throw new CommandError("not_found", `unknown camera "${camera}" (cameras: ${ids.join(", ") || "none"})`);
      await control.restartPipeline(camera);
      return { camera, restarted: true };
    },
  };
}
