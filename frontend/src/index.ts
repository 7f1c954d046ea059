/**
 * progress-bridge browser client (framework-free). React hooks: the "./react" entry point.
 */
export * from "./client/index";
export type * from "./generated/events";
