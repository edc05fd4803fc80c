export { NotifySocket, unixDgram } from "./notifySocket.js";
export { SystemdNotifier, type SystemdNotifierOptions } from "./watchdog.js";
