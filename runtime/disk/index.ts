export { describeWriteError, formatBytes, freeBytes, isDamaged, isDiskFull } from "./storageErrors.js";
export { ThrottledLog } from "./throttledLog.js";
