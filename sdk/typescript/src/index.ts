// @hutch-sh/sdk: the TypeScript SDK of hutch. See README.md.
export { Hutch, Secrets, DEFAULT_URL, type HutchOptions } from "./client.js";
export {
  Sandbox,
  Session,
  type SandboxOptions,
  type SandboxInfo,
  type SandboxState,
  type FileEntry,
  type WriteFileOptions,
  type Policy,
  type Snapshot,
  type Backup,
  type SleepInfo,
} from "./sandbox.js";
export type { ExecOptions, ExecResult, ExecEvent } from "./exec.js";
export { Process, type ProcessOptions, type ProcessInfo, type ProcessState, type WaitOptions, type PortWaitOptions, type LogEvent } from "./process.js";
export {
  Execution,
  Result,
  type CodeContext,
  type CodeContextOptions,
  type RunCodeOptions,
  type OutputMessage,
  type ExecutionError,
  type ExecutionStatus,
  type Language,
} from "./code.js";
export type { WatchOptions, WatchEvent, WatchEventKind, ChangesResult } from "./watch.js";
export { TerminalConnection, type TerminalOptions } from "./terminal.js";
export type { DurationLike, ByteSource } from "./util.js";
export * from "./errors.js";
