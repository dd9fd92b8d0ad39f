// The code interpreter: persistent Python, JavaScript and TypeScript contexts.
import type { Rpc } from "./rpc.js";
import { typedStream } from "./rpc.js";
import { CodeStatus, type CodeContext as WireCodeContext, type CodeResult } from "./gen/hutch/v1/code_pb.js";
import { CanceledError, UnavailableError } from "./errors.js";
import { envMap, linkSignals, toDate, toMillis, type DurationLike } from "./util.js";

export type Language = "python" | "javascript" | "typescript";

export interface CodeContext {
  id: string;
  language: string;
  cwd: string;
  createdAt?: Date;
}

export interface CodeContextOptions {
  language?: Language | "py" | "js" | "ts";
  /** [A-Za-z0-9_.-]{1,64}; generated when absent. */
  id?: string;
  cwd?: string;
  env?: Record<string, string | undefined>;
}

export interface OutputMessage {
  text: string;
  timestamp: Date;
}

export interface RunCodeOptions {
  /** The context (or its id) to run in; without one, the language's default context. */
  context?: CodeContext | string;
  /** Default python, or the context's language. */
  language?: Language | "py" | "js" | "ts";
  /** Interrupts the cell after this long (its state is kept). */
  timeout?: DurationLike;
  signal?: AbortSignal;
  onStdout?: (out: OutputMessage) => void;
  onStderr?: (out: OutputMessage) => void;
  onResult?: (result: Result) => void;
  onError?: (error: ExecutionError) => void;
}

/** One rich output of a cell: its value, or something it displayed. */
export class Result {
  /** The whole MIME bundle, e.g. {"text/plain": "...", "image/png": "<base64>"}. */
  readonly data: Record<string, string>;
  /** False for the value of the cell's last expression, true for display() output. */
  readonly display: boolean;
  constructor(r: CodeResult) {
    this.data = { ...r.data };
    this.display = r.display;
  }
  get isMainResult(): boolean {
    return !this.display;
  }
  get text(): string | undefined {
    return this.data["text/plain"];
  }
  get html(): string | undefined {
    return this.data["text/html"];
  }
  get markdown(): string | undefined {
    return this.data["text/markdown"];
  }
  get svg(): string | undefined {
    return this.data["image/svg+xml"];
  }
  /** Base64, as in the bundle. */
  get png(): string | undefined {
    return this.data["image/png"]?.trim();
  }
  get jpeg(): string | undefined {
    return this.data["image/jpeg"]?.trim();
  }
  get latex(): string | undefined {
    return this.data["text/latex"];
  }
  get javascript(): string | undefined {
    return this.data["application/javascript"];
  }
  /** application/json, parsed. */
  get json(): unknown {
    const j = this.data["application/json"];
    return j === undefined ? undefined : JSON.parse(j);
  }
  formats(): string[] {
    return Object.keys(this.data);
  }
  toJSON(): Record<string, unknown> {
    return { ...this.data, display: this.display };
  }
}

export interface ExecutionError {
  /** e.g. ZeroDivisionError */
  name: string;
  value: string;
  traceback: string[];
  /** 1-based line in the cell; 0 when unknown. */
  line: number;
}

export type ExecutionStatus = "ok" | "error" | "interrupted" | "timeout" | "kernel_died";

const statuses: Record<number, ExecutionStatus> = {
  [CodeStatus.OK]: "ok",
  [CodeStatus.ERROR]: "error",
  [CodeStatus.INTERRUPTED]: "interrupted",
  [CodeStatus.TIMEOUT]: "timeout",
  [CodeStatus.KERNEL_DIED]: "kernel_died",
};

/** What a cell did. */
export class Execution {
  results: Result[] = [];
  logs: { stdout: string[]; stderr: string[] } = { stdout: [], stderr: [] };
  error?: ExecutionError;
  status: ExecutionStatus = "ok";
  executionCount = 0;
  durationMs = 0;
  /** What happened, for statuses other than ok. */
  message?: string;
  context = "";
  /** A kernel that had died was restarted for this cell: earlier state is gone. */
  stateLost = false;
  /** The text of the cell's value (its main result). */
  get text(): string | undefined {
    return this.results.find((r) => r.isMainResult)?.text;
  }
  toJSON(): Record<string, unknown> {
    return { results: this.results, logs: this.logs, error: this.error, status: this.status, text: this.text, executionCount: this.executionCount };
  }
}

export function codeContext(c: WireCodeContext): CodeContext {
  return { id: c.id, language: c.language, cwd: c.cwd, createdAt: toDate(c.createdAt) };
}

export async function createCodeContext(rpc: Rpc, sandbox: string, o: CodeContextOptions = {}): Promise<CodeContext> {
  const c = await rpc.code.createCodeContext({ sandbox, id: o.id ?? "", language: o.language ?? "python", cwd: o.cwd ?? "", env: envMap(o.env) });
  return codeContext(c);
}

export async function runCode(rpc: Rpc, sandbox: string, code: string, o: RunCodeOptions = {}): Promise<Execution> {
  const ctx = typeof o.context === "string" ? o.context : (o.context?.id ?? "");
  const language = o.language ?? (typeof o.context === "object" ? o.context.language : ctx ? "" : "python");
  const ctrl = linkSignals(o.signal);
  const ex = new Execution();
  const stream = rpc.code.runCode(
    { sandbox, code, context: ctx, language, timeoutMs: BigInt(Math.round(o.timeout === undefined ? 0 : toMillis(o.timeout))) },
    { signal: ctrl.signal },
  );
  try {
    for await (const ev of typedStream(stream)) {
      const e = ev.event;
      switch (e.case) {
        case "started":
          ex.context = e.value.context;
          ex.stateLost = e.value.stateLost;
          break;
        case "stdout":
          ex.logs.stdout.push(e.value);
          o.onStdout?.({ text: e.value, timestamp: new Date() });
          break;
        case "stderr":
          ex.logs.stderr.push(e.value);
          o.onStderr?.({ text: e.value, timestamp: new Date() });
          break;
        case "result": {
          const r = new Result(e.value);
          ex.results.push(r);
          o.onResult?.(r);
          break;
        }
        case "error":
          ex.error = { name: e.value.name, value: e.value.value, traceback: e.value.traceback, line: e.value.line };
          o.onError?.(ex.error);
          break;
        case "done":
          ex.status = statuses[e.value.status] ?? "ok";
          ex.executionCount = e.value.executionCount;
          ex.durationMs = Number(e.value.durationMs);
          ex.message = e.value.message || undefined;
          return ex;
      }
    }
  } catch (err) {
    if (o.signal?.aborted) throw new CanceledError("run code cancelled: the cell was interrupted", { cause: o.signal.reason });
    throw err;
  } finally {
    ctrl.abort();
  }
  throw new UnavailableError(`run code in ${JSON.stringify(sandbox)}: the stream ended before the cell was done`);
}
