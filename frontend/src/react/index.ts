/** React hooks over the progress-bridge client (entry point "./react"). */
export { batchedSubscribe, type Subscribe } from "./batched";
export { useConnectionState } from "./useConnectionState";
export { useJobList, type JobList } from "./useJobList";
export { useJobProgress, type JobProgress, type UseJobProgressOptions } from "./useJobProgress";
