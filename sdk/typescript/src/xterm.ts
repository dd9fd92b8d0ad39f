// SandboxAddon connects an xterm.js Terminal to a hutch sandbox terminal over
// the daemon's WebSocket (DESIGN §3): binary frames carry terminal bytes both
// ways; text frames carry {"type":"resize"} from us and ready/exit/error from
// the server. It forwards resizes, reconnects with backoff and jitter, and
// clears the screen when the server replays its buffered output.
import type { IDisposable, ITerminalAddon, Terminal } from "@xterm/xterm";

export type ConnectionState = "connecting" | "connected" | "disconnected" | "exited";

export interface Target {
  sandbox: string;
  terminal: string;
}

export interface SandboxAddonOptions {
  /** The WebSocket URL of a terminal; by default the daemon's path on this origin. */
  getWebSocketUrl?: (t: Target & { origin: string }) => string;
  /** Reconnect when the connection drops (not after the shell exits). Default true. */
  reconnect?: boolean;
  /** Called on every state change; exit carries the code, error the server's message. */
  onStateChange?: (state: ConnectionState, detail?: { code?: number; error?: string }) => void;
  /** Called for the server's error frames (malformed input); the connection stays. */
  onServerError?: (message: string) => void;
}

interface ServerMessage {
  type: string;
  code?: number;
  message?: string;
}

/** The daemon's terminal WebSocket URL on origin (http(s)://host:port). */
export function terminalUrl(origin: string, t: Target, token?: string): string {
  const base = origin.replace(/^http/, "ws");
  const q = token ? `?token=${encodeURIComponent(token)}` : "";
  return `${base}/v1/sandboxes/${encodeURIComponent(t.sandbox)}/terminals/${encodeURIComponent(t.terminal)}${q}`;
}

export class SandboxAddon implements ITerminalAddon {
  private term?: Terminal;
  private ws?: WebSocket;
  private target?: Target;
  private subs: IDisposable[] = [];
  private retry?: ReturnType<typeof setTimeout>;
  private attempts = 0;
  private stopped = true;
  private encoder = new TextEncoder();
  state: ConnectionState = "disconnected";

  constructor(private readonly opts: SandboxAddonOptions = {}) {}

  activate(term: Terminal): void {
    this.term = term;
    this.subs.push(
      term.onData((d) => this.send(this.encoder.encode(d))),
      term.onBinary((d) => this.send(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff))),
      term.onResize(({ cols, rows }) => this.sendResize(cols, rows)),
    );
  }

  dispose(): void {
    this.disconnect();
    this.subs.forEach((s) => s.dispose());
    this.subs = [];
  }

  /** Attaches to a terminal, replacing any current connection. */
  connect(target: Target): void {
    this.disconnect();
    this.target = target;
    this.stopped = false;
    this.attempts = 0;
    this.open();
  }

  /** Detaches; the terminal keeps running in the sandbox. */
  disconnect(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      this.ws = undefined;
    }
    this.setState("disconnected");
  }

  private open(): void {
    if (!this.target) return;
    const origin = typeof location !== "undefined" ? location.origin : "http://127.0.0.1:7777";
    const url = this.opts.getWebSocketUrl
      ? this.opts.getWebSocketUrl({ ...this.target, origin })
      : terminalUrl(origin, this.target);
    this.setState("connecting");
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this.state === "exited") return;
      this.setState("disconnected");
      this.scheduleReconnect();
    };
  }

  private receive(data: ArrayBuffer | string): void {
    if (typeof data !== "string") {
      this.term?.write(new Uint8Array(data));
      return;
    }
    let m: ServerMessage;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    switch (m.type) {
      case "ready":
        // The server replays what it kept: start from a clean screen.
        this.term?.reset();
        this.attempts = 0;
        this.setState("connected");
        if (this.term) this.sendResize(this.term.cols, this.term.rows);
        break;
      case "exit":
        this.setState("exited", { code: m.code ?? 0 });
        break;
      case "error":
        this.opts.onServerError?.(m.message ?? "");
        break;
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.opts.reconnect === false) return;
    const backoff = Math.min(10_000, 250 * 2 ** this.attempts++);
    this.retry = setTimeout(() => this.open(), backoff / 2 + Math.random() * (backoff / 2));
  }

  private send(b: Uint8Array): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(b);
  }

  private sendResize(cols: number, rows: number): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "resize", cols, rows }));
  }

  private setState(state: ConnectionState, detail?: { code?: number; error?: string }): void {
    if (this.state === state && !detail) return;
    this.state = state;
    this.opts.onStateChange?.(state, detail);
  }
}
