/**
 * progress-bridge browser client (framework-free). React hooks: the "./react" entry point.
 */
export * from "./client/index.js";
// Every generated wire type (events, snapshot, frames); `ErrorCode` comes from the client's
// exports above as a value and a type.
export type * from "./generated/events.js";
export { ErrorCode } from "./client/index.js";
