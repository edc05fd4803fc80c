/** Camera ingest: ffmpeg-based drivers behind one interface, the latest-frame slot and the live view. */
export { Camera, type CameraOptions, type CameraState } from "./camera.js";
export { buildCameras, buildLiveView, createCamera, type CreateCameraOptions } from "./createCamera.js";
export { createSource, filePath } from "./createSource.js";
export { ffmpegCaps, resolveFfmpeg, type FfmpegBinary, type FfmpegCaps } from "./ffmpegBinary.js";
export { LatestFrameSlot, type Frame } from "./frame.js";
export { letterboxFilter, letterboxGeometry, type FrameSpec, type LetterboxMode } from "./letterbox.js";
export { LiveView } from "./liveView.js";
export type { CameraSource } from "./source.js";
export { stopFfmpeg, type StopOutcome } from "./stopFfmpeg.js";
