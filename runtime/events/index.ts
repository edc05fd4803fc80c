/** Typed events between parts: the bus and the daemon's events. */
export { EventBus } from "./eventBus.js";
export { DaemonBus, type DaemonEvents, type MessageEvents } from "./events.js";
