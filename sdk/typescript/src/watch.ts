// Filesystem watching: inotify events from inside the sandbox, as an async iterator.
import type { Rpc } from "./rpc.js";
import { typedStream } from "./rpc.js";
import { ChangeStatus, WatchEventType } from "./gen/hutch/v1/hutch_pb.js";
import { CanceledError, UnavailableError } from "./errors.js";
import { linkSignals, toDate } from "./util.js";

export interface WatchOptions {
  /** Watch subdirectories too (default true). */
  recursive?: boolean;
  /** Globs; one without '/' matches any path component's name. */
  include?: string[];
  /** Globs to leave out; by default .git and node_modules. */
  exclude?: string[];
  /** Exclude nothing when exclude is empty. */
  noDefaultExcludes?: boolean;
  /** Aborting ends the iterator with CanceledError; breaking out of the loop ends it quietly. */
  signal?: AbortSignal;
}

export type WatchEventKind = "started" | "create" | "modify" | "delete" | "move_from" | "move_to" | "attrib" | "overflow" | "stopped";

export interface WatchEvent {
  type: WatchEventKind;
  /** Absolute sandbox path. */
  path: string;
  isDirectory: boolean;
  timestamp?: Date;
  /** For move_to whose move_from was seen. */
  oldPath?: string;
  /** Pairs move_from with move_to. */
  cookie?: number;
  /** Pass it to checkChanges as since. */
  version: string;
  /** For overflow and stopped. */
  reason?: string;
}

export interface ChangesResult {
  status: "unchanged" | "changed" | "resync";
  /** For changed: the paths, oldest change first. */
  paths: string[];
  /** False when more paths changed than are still remembered. */
  pathsComplete: boolean;
  /** The next since. */
  version: string;
  reason?: string;
}

const kinds: Record<number, WatchEventKind> = {
  [WatchEventType.STARTED]: "started",
  [WatchEventType.CREATE]: "create",
  [WatchEventType.MODIFY]: "modify",
  [WatchEventType.DELETE]: "delete",
  [WatchEventType.MOVE_FROM]: "move_from",
  [WatchEventType.MOVE_TO]: "move_to",
  [WatchEventType.ATTRIB]: "attrib",
  [WatchEventType.OVERFLOW]: "overflow",
  [WatchEventType.STOPPED]: "stopped",
};

function filters(path: string, o: WatchOptions) {
  return {
    path,
    nonRecursive: o.recursive === false,
    include: o.include ?? [],
    exclude: o.exclude ?? [],
    noDefaultExcludes: o.noDefaultExcludes ?? false,
  };
}

/** Streams changes under path. The first event is "started"; the last, if the watch ends on the sandbox's side, "stopped". */
export async function* watchEvents(rpc: Rpc, sandbox: string, path: string, o: WatchOptions = {}): AsyncGenerator<WatchEvent> {
  const ctrl = linkSignals(o.signal);
  try {
    for await (const resp of typedStream(rpc.watch.watch({ sandbox, ...filters(path, o) }, { signal: ctrl.signal }))) {
      for (const e of resp.events) {
        const type = kinds[e.type];
        if (!type) continue; // keep-alives
        yield {
          type,
          path: e.path,
          isDirectory: e.isDirectory,
          timestamp: toDate(e.timestamp),
          oldPath: e.oldPath || undefined,
          cookie: e.cookie || undefined,
          version: e.version,
          reason: e.reason || undefined,
        };
        if (type === "stopped") return;
      }
    }
  } catch (err) {
    if (o.signal?.aborted) throw new CanceledError("watch cancelled", { cause: o.signal.reason });
    throw err;
  } finally {
    ctrl.abort();
  }
  throw new UnavailableError(`watch ${JSON.stringify(path)} in ${JSON.stringify(sandbox)}: the stream ended without a stopped event`);
}

export async function checkChanges(rpc: Rpc, sandbox: string, path: string, o: WatchOptions & { since: string }): Promise<ChangesResult> {
  const r = await rpc.watch.checkChanges({ sandbox, ...filters(path, o), since: o.since });
  const status = r.status === ChangeStatus.CHANGED ? "changed" : r.status === ChangeStatus.UNCHANGED ? "unchanged" : "resync";
  return { status, paths: r.paths, pathsComplete: r.pathsComplete, version: r.version, reason: r.reason || undefined };
}
