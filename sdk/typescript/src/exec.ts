// Exec: run a command to completion, streaming its output. The daemon kills
// the whole process tree when the call is cancelled, so an AbortSignal is all
// it takes to stop a command (the Go client does the same with its context).
import type { Rpc } from "./rpc.js";
import { CanceledError, HutchError, UnavailableError, toHutchError } from "./errors.js";
import { chunks, envMap, linkSignals, toMillis, type ByteSource, type DurationLike } from "./util.js";

export interface ExecOptions {
  /** Working directory; /workspace by default. */
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Kill the process tree after this long (ms, or "30s"); the call then throws DeadlineExceededError. */
  timeout?: DurationLike;
  /** Fed to the command's stdin, which is then closed; without it the command reads /dev/null. */
  stdin?: ByteSource;
  /** Aborting kills the remote process tree; the call throws CanceledError. */
  signal?: AbortSignal;
  /** Called with output as it arrives (decoded as UTF-8). */
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
  /** Run in this session's shell (see Sandbox.createSession). */
  session?: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** exitCode === 0 */
  success: boolean;
  /** Signal name when the command was killed by one, e.g. "SIGKILL". */
  signal?: string;
  durationMs: number;
}

export type ExecEvent =
  | { type: "start"; id: string; pid: number }
  | { type: "stdout"; data: string; bytes: Uint8Array }
  | { type: "stderr"; data: string; bytes: Uint8Array }
  | { type: "exit"; exitCode: number; success: boolean; signal?: string; durationMs: number };

const stdinChunk = 256 << 10;

/** Streams one exec's events; the last one is always "exit", or the iterator throws. */
export async function* execEvents(rpc: Rpc, sandbox: string, cmd: string | string[], o: ExecOptions = {}): AsyncGenerator<ExecEvent> {
  const ctrl = linkSignals(o.signal);
  const stdinFailed = new AbortController();
  const out = new TextDecoder();
  const err = new TextDecoder();
  let stdinError: unknown;
  try {
    const stream = rpc.process.exec(
      {
        sandbox,
        argv: Array.isArray(cmd) ? cmd : [],
        shell: Array.isArray(cmd) ? "" : cmd,
        cwd: o.cwd ?? "",
        env: envMap(o.env),
        timeoutMs: BigInt(Math.round(o.timeout === undefined ? 0 : toMillis(o.timeout))),
        stdin: o.stdin !== undefined,
        session: o.session ?? "",
      },
      { signal: ctrl.signal },
    );
    for await (const ev of stream) {
      const e = ev.event;
      switch (e.case) {
        case "started":
          if (o.stdin !== undefined) {
            pumpStdin(rpc, sandbox, e.value.id, o.stdin, ctrl.signal).catch((er) => {
              stdinError = er;
              stdinFailed.abort();
              ctrl.abort(er);
            });
          }
          yield { type: "start", id: e.value.id, pid: e.value.pid };
          break;
        case "stdout":
          yield { type: "stdout", data: out.decode(e.value, { stream: true }), bytes: e.value };
          break;
        case "stderr":
          yield { type: "stderr", data: err.decode(e.value, { stream: true }), bytes: e.value };
          break;
        case "exit": {
          // Bytes of a character cut by the end of output.
          const restOut = out.decode();
          if (restOut) yield { type: "stdout", data: restOut, bytes: new Uint8Array() };
          const restErr = err.decode();
          if (restErr) yield { type: "stderr", data: restErr, bytes: new Uint8Array() };
          const code = e.value.code;
          yield { type: "exit", exitCode: code, success: code === 0, signal: e.value.signal || undefined, durationMs: Number(e.value.durationMs) };
          return;
        }
      }
    }
  } catch (er) {
    if (stdinFailed.signal.aborted) throw toHutchError(stdinError);
    if (o.signal?.aborted) throw new CanceledError("exec cancelled: the remote process tree was killed", { cause: o.signal.reason });
    throw toHutchError(er);
  } finally {
    // Leaving early (break, a throwing callback) cancels the call, which kills the command.
    ctrl.abort();
  }
  throw new UnavailableError(`exec in ${JSON.stringify(sandbox)}: the stream ended without an exit status`);
}

async function pumpStdin(rpc: Rpc, sandbox: string, id: string, src: ByteSource, signal: AbortSignal): Promise<void> {
  let pending: Uint8Array | undefined;
  const send = (data: Uint8Array, eof: boolean) => rpc.process.writeStdin({ sandbox, id, data, eof }, { signal });
  for await (const c of chunks(src)) {
    for (let i = 0; i < c.length; i += stdinChunk) {
      if (pending) await send(pending, false);
      pending = c.subarray(i, i + stdinChunk);
    }
  }
  await send(pending ?? new Uint8Array(), true);
}

/** Runs a command to completion and collects its output. */
export async function runExec(rpc: Rpc, sandbox: string, cmd: string | string[], o: ExecOptions = {}): Promise<ExecResult> {
  let stdout = "";
  let stderr = "";
  for await (const ev of execEvents(rpc, sandbox, cmd, o)) {
    switch (ev.type) {
      case "stdout":
        stdout += ev.data;
        o.onStdout?.(ev.data);
        break;
      case "stderr":
        stderr += ev.data;
        o.onStderr?.(ev.data);
        break;
      case "exit":
        return { stdout, stderr, exitCode: ev.exitCode, success: ev.success, signal: ev.signal, durationMs: ev.durationMs };
    }
  }
  throw new HutchError("unreachable: exec ended without exit");
}
