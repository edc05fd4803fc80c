export { download, type Downloaded, type DownloadOptions } from "./download.js";
export { loadPublicKey } from "./signature.js";
export { ModelStore, type ModelState, type ModelVersion } from "./store.js";
export { loadWithFallback, withVersion, type ModelSwapTarget } from "./swap.js";
export { ModelUpdater, type ModelUpdaterOptions, type UpdateRequest } from "./updater.js";
export { openDetectionSession } from "./checkedSession.js";
