/** React hooks over the progress-bridge client (entry point "./react"). */
export { batchedSubscribe, type Subscribe } from "./batched.js";
export { useConnectionState } from "./useConnectionState.js";
export { useJobList, type JobList } from "./useJobList.js";
export { useJobPresence } from "./useJobPresence.js";
export { useJobProgress, type JobProgress, type UseJobProgressOptions } from "./useJobProgress.js";
export { useTransport } from "./useTransport.js";
