// Background processes: started, then watched, waited on and killed by id.
import type { Rpc } from "./rpc.js";
import { typedStream } from "./rpc.js";
import { ProcessStatus, type ProcessInfo as WireProcessInfo } from "./gen/hutch/v1/hutch_pb.js";
import { UnavailableError } from "./errors.js";
import { toDate, toMillis, type DurationLike } from "./util.js";

export interface ProcessOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** The process's id ([A-Za-z0-9_.-]{1,64}); generated when absent. */
  processId?: string;
}

export type ProcessState = "running" | "exited" | "killed" | "failed" | "unknown";

export interface ProcessInfo {
  id: string;
  pid: number;
  status: ProcessState;
  command: string[];
  cwd: string;
  startedAt?: Date;
  endedAt?: Date;
  /** Set once ended: 128+n for signal n. */
  exitCode?: number;
  signal?: string;
}

export interface WaitOptions {
  /** Default 60 s (the daemon's). */
  timeout?: DurationLike;
  signal?: AbortSignal;
}

export interface PortWaitOptions extends WaitOptions {
  /** "tcp" (default): the port accepts connections; "http": it answers with a status in range. */
  mode?: "tcp" | "http";
  /** For http: the path to ask (default "/") and the accepted status range (default 200-399). */
  path?: string;
  status?: { min?: number; max?: number };
}

export type LogEvent =
  | { type: "stdout" | "stderr"; data: string; offset: number; truncated: boolean }
  | { type: "exit"; process: ProcessInfo };

const states: Record<number, ProcessState> = {
  [ProcessStatus.RUNNING]: "running",
  [ProcessStatus.EXITED]: "exited",
  [ProcessStatus.KILLED]: "killed",
  [ProcessStatus.FAILED]: "failed",
};

export function processInfo(p: WireProcessInfo): ProcessInfo {
  const ended = p.status !== ProcessStatus.RUNNING && p.status !== ProcessStatus.UNSPECIFIED;
  return {
    id: p.id,
    pid: p.pid,
    status: states[p.status] ?? "unknown",
    command: p.argv,
    cwd: p.cwd,
    startedAt: toDate(p.startedAt),
    endedAt: toDate(p.endedAt),
    exitCode: ended ? p.exitCode : undefined,
    signal: p.signal || undefined,
  };
}

function timeoutMs(o: WaitOptions): bigint {
  return BigInt(Math.round(o.timeout === undefined ? 0 : toMillis(o.timeout)));
}

/** RE2 (the daemon's regexp dialect) from a JS RegExp: same syntax for the common subset; i, m, s flags carried over. */
function re2(re: RegExp | string): string {
  if (typeof re === "string") return re;
  const flags = [...re.flags].filter((f) => "ims".includes(f)).join("");
  return flags ? `(?${flags})${re.source}` : re.source;
}

/** A background process in a sandbox. */
export class Process {
  constructor(
    private readonly rpc: Rpc,
    readonly sandbox: string,
    readonly id: string,
    readonly pid: number,
  ) {}

  /** Its current state. */
  async info(): Promise<ProcessInfo> {
    return processInfo(await this.rpc.process.getProcess({ sandbox: this.sandbox, id: this.id }));
  }

  /**
   * Waits for a line of output matching re (lines already printed count too).
   * Throws FailedPreconditionError if the process ends first, DeadlineExceededError on timeout.
   */
  async waitForLog(re: RegExp | string, o: WaitOptions = {}): Promise<{ line: string; match: RegExpMatchArray | null }> {
    const resp = await this.rpc.process.waitProcess(
      { sandbox: this.sandbox, id: this.id, condition: { case: "log", value: re2(re) }, timeoutMs: timeoutMs(o) },
      { signal: o.signal },
    );
    const line = resp.line;
    return { line, match: line.match(typeof re === "string" ? new RegExp(re) : re) };
  }

  /** Waits until the port accepts connections (mode "tcp") or answers HTTP (mode "http"). */
  async waitForPort(port: number, o: PortWaitOptions = {}): Promise<void> {
    await this.rpc.process.waitProcess(
      {
        sandbox: this.sandbox,
        id: this.id,
        condition: {
          case: "port",
          value: { port, mode: o.mode ?? "tcp", path: o.path ?? "", statusMin: o.status?.min ?? 0, statusMax: o.status?.max ?? 0 },
        },
        timeoutMs: timeoutMs(o),
      },
      { signal: o.signal },
    );
  }

  /** Waits for the process to end and tells how. */
  async waitForExit(o: WaitOptions = {}): Promise<ProcessInfo> {
    const resp = await this.rpc.process.waitProcess(
      { sandbox: this.sandbox, id: this.id, condition: { case: "exit", value: true }, timeoutMs: timeoutMs(o) },
      { signal: o.signal },
    );
    return processInfo(resp.process!);
  }

  /** Signals the whole process tree (SIGTERM, then SIGKILL after the grace period) and returns once it is gone. */
  async kill(signal = "SIGTERM", o: { grace?: DurationLike } = {}): Promise<ProcessInfo> {
    const grace = o.grace === undefined ? 0 : toMillis(o.grace);
    return processInfo(await this.rpc.process.killProcess({ sandbox: this.sandbox, id: this.id, signal, graceMs: BigInt(Math.round(grace)) }));
  }

  /** Output kept so far (up to the daemon's buffer), as text. */
  async getLogs(): Promise<{ stdout: string; stderr: string }> {
    let stdout = "";
    let stderr = "";
    for await (const ev of this.streamLogs({ follow: false })) {
      if (ev.type === "stdout") stdout += ev.data;
      else if (ev.type === "stderr") stderr += ev.data;
    }
    return { stdout, stderr };
  }

  /**
   * Streams output: what is kept, then (follow, the default) live output until the
   * process ends with an "exit" event.
   */
  async *streamLogs(o: { follow?: boolean; fromNow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<LogEvent> {
    const follow = o.follow ?? true;
    const dec = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    const stream = this.rpc.process.processLogs({ sandbox: this.sandbox, id: this.id, follow, fromNow: o.fromNow ?? false }, { signal: o.signal });
    let ended = false;
    for await (const ev of typedStream(stream)) {
      const e = ev.event;
      if (e.case === "stdout" || e.case === "stderr") {
        yield { type: e.case, data: dec[e.case].decode(e.value.data, { stream: true }), offset: Number(e.value.offset), truncated: e.value.truncated };
      } else if (e.case === "exit") {
        ended = true;
        yield { type: "exit", process: processInfo(e.value) };
      }
    }
    if (follow && !ended) throw new UnavailableError(`logs of process ${JSON.stringify(this.id)}: the stream ended before the process did`);
  }
}
