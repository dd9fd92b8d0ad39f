// Terminals: a shell on a real PTY in the sandbox, attached over the daemon's
// WebSocket (DESIGN §3: binary frames both ways, JSON text frames for resize,
// ready, exit and error). Browsers and Node ≥ 22 have a global WebSocket;
// on older Node the `ws` package stands in.
import { HutchError, UnavailableError, DeadlineExceededError, errorFor } from "./errors.js";
import { encoder, toMillis, type DurationLike } from "./util.js";

export interface TerminalOptions {
  /** [A-Za-z0-9_.-]{1,64}; generated when absent. Attach to an existing one with Sandbox.attachTerminal. */
  id?: string;
  /** Program and arguments; default bash -l. */
  command?: string[];
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Initial size; default 80x24. */
  cols?: number;
  rows?: number;
}

interface WebSocketLike {
  binaryType: string;
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number): void;
}
type WebSocketCtor = new (url: string) => WebSocketLike;

async function webSocketClass(): Promise<WebSocketCtor> {
  const g = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (g) return g;
  const name = "ws"; // through a variable, so bundlers for browsers leave it alone
  const mod = (await import(/* webpackIgnore: true */ name)) as { default?: WebSocketCtor; WebSocket?: WebSocketCtor };
  const ws = mod.WebSocket ?? mod.default;
  if (!ws) throw new UnavailableError("no WebSocket: use Node ≥ 22 or install the ws package");
  return ws;
}

/** An attached client of a sandbox terminal. The shell keeps running after close(); kill() ends it. */
export class TerminalConnection {
  private dataListeners = new Set<(data: Uint8Array) => void>();
  private exitListeners = new Set<(code: number) => void>();
  private decoder = new TextDecoder();
  private text = "";
  private waiters = new Set<() => void>();
  private exitCode?: number;
  private closedErr?: HutchError;
  /** Resolves with the shell's exit code; rejects if the connection breaks first. */
  readonly exited: Promise<number>;
  private settleExit!: (code: number) => void;
  private failExit!: (err: HutchError) => void;

  private constructor(
    readonly id: string,
    private readonly ws: WebSocketLike,
    private readonly closeRemote: () => Promise<void>,
  ) {
    this.exited = new Promise((res, rej) => {
      this.settleExit = res;
      this.failExit = rej;
    });
    this.exited.catch(() => {}); // observed through waitFor/onExit too
  }

  /** @internal */
  static async open(url: string, id: string, closeRemote: () => Promise<void>): Promise<TerminalConnection> {
    const WS = await webSocketClass();
    const ws = new WS(url);
    ws.binaryType = "arraybuffer";
    const t = new TerminalConnection(id, ws, closeRemote);
    await new Promise<void>((resolve, reject) => {
      let ready = false;
      ws.onmessage = (ev) => {
        if (typeof ev.data === "string") {
          const m = safeParse(ev.data);
          if (m?.type === "ready" && !ready) {
            ready = true;
            resolve();
            return;
          }
          if (m?.type === "error" && !ready) {
            reject(errorFor("unavailable", `terminal ${id}: ${m.message ?? "error"}`));
            return;
          }
          t.control(m);
          return;
        }
        t.data(toU8(ev.data));
      };
      ws.onerror = () => {
        if (!ready) reject(new UnavailableError(`terminal ${id}: the WebSocket failed (does it exist? is the daemon reachable?)`));
      };
      ws.onclose = (ev) => {
        if (!ready) reject(new UnavailableError(`terminal ${id}: closed before it was ready (${ev.code} ${ev.reason})`));
        t.closed();
      };
    });
    return t;
  }

  /** Sends keystrokes (strings are UTF-8 encoded). */
  write(data: string | Uint8Array): void {
    this.ws.send(typeof data === "string" ? encoder.encode(data) : data);
  }

  resize(cols: number, rows: number): void {
    this.ws.send(JSON.stringify({ type: "resize", cols, rows }));
  }

  /** Output bytes as they arrive (after the server's replay of what it kept). Returns an unsubscribe function. */
  onData(fn: (data: Uint8Array) => void): () => void {
    this.dataListeners.add(fn);
    return () => this.dataListeners.delete(fn);
  }

  onExit(fn: (code: number) => void): () => void {
    if (this.exitCode !== undefined) fn(this.exitCode);
    else this.exitListeners.add(fn);
    return () => this.exitListeners.delete(fn);
  }

  /** All output so far, decoded as text. */
  get output(): string {
    return this.text;
  }

  /** Waits until the output so far matches (a string is a substring); returns the match. */
  async waitFor(pattern: RegExp | string, o: { timeout?: DurationLike } = {}): Promise<RegExpMatchArray | string> {
    const test = () => (typeof pattern === "string" ? (this.text.includes(pattern) ? pattern : null) : this.text.match(pattern));
    const deadline = toMillis(o.timeout ?? 30_000);
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = test();
        if (m) return done(() => resolve(m));
        if (this.closedErr || this.exitCode !== undefined)
          return done(() => reject(this.closedErr ?? new UnavailableError(`terminal ${this.id} exited (${this.exitCode}) before ${pattern} was seen`)));
      };
      const timer = setTimeout(() => done(() => reject(new DeadlineExceededError(`terminal ${this.id}: ${pattern} not seen in ${deadline} ms; output: ${JSON.stringify(this.text.slice(-500))}`))), deadline);
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        f();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Detaches; the shell keeps running and can be attached again. */
  close(): void {
    this.ws.onclose = null;
    this.ws.close(1000);
    this.closed();
  }

  /** Kills the shell and everything it started, then detaches. */
  async kill(): Promise<void> {
    await this.closeRemote();
    this.close();
  }

  private data(b: Uint8Array): void {
    this.text += this.decoder.decode(b, { stream: true });
    for (const fn of this.dataListeners) fn(b);
    this.wake();
  }

  private control(m: { type?: string; code?: number; message?: string } | undefined): void {
    if (m?.type === "exit") {
      this.exitCode = m.code ?? 0;
      for (const fn of this.exitListeners) fn(this.exitCode);
      this.exitListeners.clear();
      this.settleExit(this.exitCode);
      this.wake();
    }
  }

  private closed(): void {
    if (this.exitCode === undefined && !this.closedErr) {
      this.closedErr = new UnavailableError(`terminal ${this.id}: the connection closed`);
      this.failExit(this.closedErr);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

function safeParse(s: string): { type?: string; code?: number; message?: string } | undefined {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function toU8(d: unknown): Uint8Array {
  if (d instanceof ArrayBuffer) return new Uint8Array(d);
  if (ArrayBuffer.isView(d)) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (Array.isArray(d)) return new Uint8Array(concat(d as Uint8Array[]));
  return new Uint8Array();
}

function concat(parts: Uint8Array[]): ArrayBuffer {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out.buffer;
}
