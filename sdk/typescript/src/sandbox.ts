// A sandbox by name: created on first use with its options, then exec, files,
// processes, code, watch, terminals, snapshots, policy and the rest.
import type { Rpc } from "./rpc.js";
import { FileType, State, type Sandbox as WireSandbox, type FileInfo } from "./gen/hutch/v1/hutch_pb.js";
import type { Snapshot as WireSnapshot, Backup as WireBackup } from "./gen/hutch/v1/snapshot_pb.js";
import { InvalidArgumentError } from "./errors.js";
import { execEvents, runExec, type ExecEvent, type ExecOptions, type ExecResult } from "./exec.js";
import { Process, processInfo, type ProcessInfo, type ProcessOptions } from "./process.js";
import { codeContext, createCodeContext, runCode, type CodeContext, type CodeContextOptions, type Execution, type RunCodeOptions } from "./code.js";
import { checkChanges, watchEvents, type ChangesResult, type WatchEvent, type WatchOptions } from "./watch.js";
import { TerminalConnection, type TerminalOptions } from "./terminal.js";
import { envMap, toDate, toDuration, toMillis, toReadableStream, durationMillis, type ByteSource, type DurationLike } from "./util.js";

/** The egress policy (DESIGN §3). */
export interface Policy {
  internet?: boolean;
  allow?: string[];
  deny?: string[];
  rules?: { host: string; headers?: Record<string, string> }[];
  [key: string]: unknown;
}

export interface SandboxOptions {
  /** Image name; the default image when absent. */
  image?: string;
  /** Instance type. */
  type?: string;
  /** Not in the daemon's API yet: passing it throws InvalidArgumentError rather than being ignored. */
  runtime?: string;
  /** Environment every exec, process and session sees (set once, on first use). */
  env?: Record<string, string>;
  /** Egress policy, applied on first use. */
  policy?: Policy;
  /** Idle time before the sandbox sleeps (ms or "10m"). */
  sleepAfter?: DurationLike;
  /** Never sleep while idle. */
  keepAlive?: boolean;
  /** Not in the daemon's API yet: passing it throws InvalidArgumentError rather than being ignored. */
  labels?: Record<string, string>;
}

export type SandboxState = "creating" | "running" | "stopped" | "sleeping" | "failed" | "unknown";

export interface SandboxInfo {
  name: string;
  id: string;
  state: SandboxState;
  image: string;
  runtime: string;
  createdAt?: Date;
  startedAt?: Date;
  /** Set when state is failed. */
  reason?: string;
  address?: string;
}

export interface FileEntry {
  name: string;
  /** Absolute sandbox path. */
  path: string;
  type: "file" | "directory" | "symlink" | "other";
  size: number;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  modifiedAt?: Date;
  /** Link target, for symlinks. */
  target?: string;
}

export interface WriteFileOptions {
  /** Permission bits; 0o644 by default. */
  mode?: number;
  /** Create missing parent directories (default true). */
  parents?: boolean;
  append?: boolean;
  signal?: AbortSignal;
}

export interface Snapshot {
  id: string;
  sandbox: string;
  image: string;
  size: number;
  createdAt?: Date;
  expiresAt?: Date;
  usedBy: string[];
}

export interface Backup {
  id: string;
  name: string;
  sandbox: string;
  dir: string;
  size: number;
  digest: string;
  createdAt?: Date;
  expiresAt?: Date;
}

export interface SleepInfo {
  sleeping: boolean;
  sleepAfterMs?: number;
  keepAlive: boolean;
  sleepsAt?: Date;
}

const sandboxStates: Record<number, SandboxState> = {
  [State.CREATING]: "creating",
  [State.RUNNING]: "running",
  [State.STOPPED]: "stopped",
  [State.SLEEPING]: "sleeping",
  [State.FAILED]: "failed",
};

export function sandboxInfo(s: WireSandbox): SandboxInfo {
  return {
    name: s.name,
    id: s.id,
    state: sandboxStates[s.state] ?? "unknown",
    image: s.image,
    runtime: s.runtime,
    createdAt: toDate(s.createdAt),
    startedAt: toDate(s.startedAt),
    reason: s.reason || undefined,
    address: s.address || undefined,
  };
}

const fileTypes: Record<number, FileEntry["type"]> = {
  [FileType.FILE]: "file",
  [FileType.DIRECTORY]: "directory",
  [FileType.SYMLINK]: "symlink",
};

function fileEntry(f: FileInfo): FileEntry {
  return {
    name: f.name,
    path: f.path,
    type: fileTypes[f.type] ?? "other",
    size: Number(f.size),
    mode: f.mode,
    modifiedAt: toDate(f.modifiedAt),
    target: f.target || undefined,
  };
}

export function snapshotInfo(s: WireSnapshot): Snapshot {
  return { id: s.id, sandbox: s.sandbox, image: s.image, size: Number(s.size), createdAt: toDate(s.createdAt), expiresAt: toDate(s.expiresAt), usedBy: s.usedBy };
}

function backupInfo(b: WireBackup): Backup {
  return { id: b.id, name: b.name, sandbox: b.sandbox, dir: b.dir, size: Number(b.size), digest: b.digest, createdAt: toDate(b.createdAt), expiresAt: toDate(b.expiresAt) };
}

/** A session: a long-lived shell with its own cwd and environment; cd and exports persist between execs. */
export class Session {
  constructor(
    private readonly sb: Sandbox,
    readonly id: string,
    readonly cwd: string,
  ) {}
  exec(cmd: string | string[], o: Omit<ExecOptions, "session"> = {}): Promise<ExecResult> {
    return this.sb.exec(cmd, { ...o, session: this.id });
  }
  execStream(cmd: string | string[], o: Omit<ExecOptions, "session"> = {}): AsyncGenerator<ExecEvent> {
    return this.sb.execStream(cmd, { ...o, session: this.id });
  }
  /** Sets (or, with undefined, unsets) variables of this session only. */
  async setEnvVars(vars: Record<string, string | undefined>): Promise<void> {
    await this.sb.setEnvVars(vars, { session: this.id });
  }
  async delete(): Promise<void> {
    await this.sb.rpc.process.deleteSession({ sandbox: this.sb.name, id: this.id });
  }
}

/**
 * A sandbox, by name. Nothing happens until the first call: that call creates
 * the sandbox with the options given to Hutch.sandbox (or uses the existing one).
 */
export class Sandbox {
  private ready?: Promise<void>;

  /** @internal */
  constructor(
    readonly rpc: Rpc,
    readonly name: string,
    private readonly opts: SandboxOptions = {},
  ) {}

  /** Creates the sandbox now if it does not exist (every call does this on first use). */
  async start(o: { snapshot?: string } = {}): Promise<SandboxInfo> {
    if (o.snapshot) {
      const resp = await this.rpc.snapshots.fork({ snapshot: o.snapshot, newNames: [this.name], ...this.sleepFields() });
      this.ready = this.configure(true);
      await this.ready;
      return sandboxInfo(resp.sandboxes[0]);
    }
    const info = await this.create();
    return info;
  }

  private create(): Promise<SandboxInfo> {
    let info: SandboxInfo | undefined;
    const p = (async () => {
      const { runtime, labels } = this.opts;
      if (runtime !== undefined) throw new InvalidArgumentError("sandbox option runtime: the daemon's API does not take a runtime per sandbox yet (hutch serve --runtime sets it)");
      if (labels !== undefined) throw new InvalidArgumentError("sandbox option labels: the daemon's API does not take labels yet");
      const resp = await this.rpc.sandboxes.create({ name: this.name, image: this.opts.image ?? "", instanceType: this.opts.type ?? "" });
      info = sandboxInfo(resp.sandbox!);
      await this.configure(resp.created);
    })();
    this.ready = p;
    p.catch(() => {
      if (this.ready === p) this.ready = undefined; // let a later call try again
    });
    return p.then(() => info!);
  }

  /** Applies the options the create call cannot carry (policy, env, sleep) to a sandbox this call created. */
  private async configure(created: boolean): Promise<void> {
    if (!created) return;
    const { policy, env, sleepAfter, keepAlive } = this.opts;
    if (policy) await this.rpc.egress.setPolicy({ sandbox: this.name, policy: JSON.stringify(policy) });
    if (env) await this.rpc.process.setEnv({ sandbox: this.name, set: env });
    if (sleepAfter !== undefined || keepAlive !== undefined) {
      await this.rpc.snapshots.configureSleep({
        name: this.name,
        sleepAfter: sleepAfter === undefined ? undefined : toDuration(sleepAfter),
        keepAlive,
      });
    }
  }

  private sleepFields() {
    const { sleepAfter, keepAlive } = this.opts;
    return { sleepAfter: sleepAfter === undefined ? undefined : toDuration(sleepAfter), keepAlive: keepAlive ?? false };
  }

  private async ensure(): Promise<void> {
    if (!this.ready) this.create().catch(() => {});
    await this.ready;
  }

  /** The sandbox's state, without creating it: NotFoundError if it does not exist. */
  async info(): Promise<SandboxInfo> {
    const resp = await this.rpc.sandboxes.get({ name: this.name });
    return sandboxInfo(resp.sandbox!);
  }

  // --- exec ---

  /** Runs a command to completion: a string runs with sh -c, an array directly. */
  async exec(cmd: string | string[], o: ExecOptions = {}): Promise<ExecResult> {
    await this.ensure();
    return runExec(this.rpc, this.name, cmd, o);
  }

  /** Streams a command's events: start, stdout, stderr, and finally exit (or throws). */
  async *execStream(cmd: string | string[], o: ExecOptions = {}): AsyncGenerator<ExecEvent> {
    await this.ensure();
    yield* execEvents(this.rpc, this.name, cmd, o);
  }

  // --- files ---

  private fileUrl(path: string, q: Record<string, string> = {}): string {
    const params = new URLSearchParams({ path, ...q });
    return `/v1/sandboxes/${encodeURIComponent(this.name)}/files?${params}`;
  }

  /** Writes a file (atomically replaced) from a string, bytes, a Blob, a ReadableStream or an async iterable. */
  async writeFile(path: string, data: ByteSource, o: WriteFileOptions = {}): Promise<void> {
    await this.ensure();
    const q: Record<string, string> = {};
    if (o.mode !== undefined) q.mode = o.mode.toString(8);
    if (o.parents ?? true) q.parents = "1";
    if (o.append) q.append = "1";
    const body: BodyInit =
      typeof data === "string" || data instanceof Uint8Array || data instanceof ArrayBuffer || (typeof Blob !== "undefined" && data instanceof Blob)
        ? (data as BodyInit)
        : toReadableStream(data);
    const init: RequestInit & { duplex?: string } = { method: "PUT", body, headers: { "Content-Type": "application/octet-stream" }, signal: o.signal };
    if (body instanceof ReadableStream) init.duplex = "half";
    const resp = await this.rpc.http(this.fileUrl(path, q), init);
    await resp.body?.cancel();
  }

  /** Reads a file: text by default; {encoding:"bytes"} gives a Uint8Array, {encoding:"stream"} a ReadableStream. */
  readFile(path: string, o?: { encoding?: "utf8" | "utf-8"; signal?: AbortSignal }): Promise<string>;
  readFile(path: string, o: { encoding: "bytes"; signal?: AbortSignal }): Promise<Uint8Array>;
  readFile(path: string, o: { encoding: "stream"; signal?: AbortSignal }): Promise<ReadableStream<Uint8Array>>;
  async readFile(path: string, o: { encoding?: string; signal?: AbortSignal } = {}): Promise<string | Uint8Array | ReadableStream<Uint8Array>> {
    await this.ensure();
    const resp = await this.rpc.http(this.fileUrl(path), { signal: o.signal });
    switch (o.encoding ?? "utf8") {
      case "bytes":
        return new Uint8Array(await resp.arrayBuffer());
      case "stream":
        return resp.body ?? new ReadableStream({ start: (c) => c.close() });
      case "utf8":
      case "utf-8":
        return resp.text();
      default:
        await resp.body?.cancel();
        throw new InvalidArgumentError(`readFile encoding ${JSON.stringify(o.encoding)}: want utf8, bytes or stream`);
    }
  }

  async mkdir(path: string, o: { recursive?: boolean; mode?: number } = {}): Promise<void> {
    await this.ensure();
    await this.rpc.files.makeDir({ sandbox: this.name, path, parents: o.recursive ?? false, mode: o.mode ?? 0 });
  }

  async deleteFile(path: string, o: { recursive?: boolean } = {}): Promise<void> {
    await this.ensure();
    await this.rpc.files.remove({ sandbox: this.name, path, recursive: o.recursive ?? false });
  }

  async renameFile(from: string, to: string, o: { overwrite?: boolean } = {}): Promise<void> {
    await this.ensure();
    await this.rpc.files.rename({ sandbox: this.name, from, to, overwrite: o.overwrite ?? false });
  }

  async listFiles(path: string, o: { recursive?: boolean; excludeHidden?: boolean } = {}): Promise<FileEntry[]> {
    await this.ensure();
    const resp = await this.rpc.files.listDir({ sandbox: this.name, path, recursive: o.recursive ?? false, excludeHidden: o.excludeHidden ?? false });
    return resp.entries.map(fileEntry);
  }

  async exists(path: string): Promise<boolean> {
    return (await this.stat(path)) !== undefined;
  }

  /** Describes a path; undefined when nothing is there. */
  async stat(path: string): Promise<FileEntry | undefined> {
    await this.ensure();
    const resp = await this.rpc.files.stat({ sandbox: this.name, path });
    return resp.exists && resp.info ? fileEntry(resp.info) : undefined;
  }

  // --- git, processes, ports ---

  /** Clones a repository (into /workspace/<repository name> by default). */
  async gitCheckout(url: string, o: { branch?: string; depth?: number; targetDir?: string; timeout?: DurationLike } = {}): Promise<{ targetDir: string; branch: string; commit: string }> {
    await this.ensure();
    const r = await this.rpc.process.gitCheckout({
      sandbox: this.name,
      url,
      branch: o.branch ?? "",
      depth: o.depth ?? 0,
      targetDir: o.targetDir ?? "",
      timeoutMs: BigInt(Math.round(o.timeout === undefined ? 0 : toMillis(o.timeout))),
    });
    return { targetDir: r.targetDir, branch: r.branch, commit: r.commit };
  }

  /** Starts a background process: a string runs with sh -c, an array directly. */
  async startProcess(cmd: string | string[], o: ProcessOptions = {}): Promise<Process> {
    await this.ensure();
    const p = await this.rpc.process.startProcess({
      sandbox: this.name,
      id: o.processId ?? "",
      argv: Array.isArray(cmd) ? cmd : [],
      shell: Array.isArray(cmd) ? "" : cmd,
      cwd: o.cwd ?? "",
      env: envMap(o.env),
    });
    return new Process(this.rpc, this.name, p.id, p.pid);
  }

  /** A process started earlier, by id. */
  getProcess(id: string): Process {
    return new Process(this.rpc, this.name, id, 0);
  }

  async listProcesses(): Promise<ProcessInfo[]> {
    await this.ensure();
    return (await this.rpc.process.listProcesses({ sandbox: this.name })).processes.map(processInfo);
  }

  async killAllProcesses(): Promise<number> {
    await this.ensure();
    return (await this.rpc.process.killAllProcesses({ sandbox: this.name })).killed;
  }

  /** Gives a port a preview URL (the same one when exposed again). */
  async exposePort(port: number): Promise<{ port: number; url: string }> {
    await this.ensure();
    const r = await this.rpc.sandboxes.exposePort({ name: this.name, port });
    return { port: r.port, url: r.url };
  }

  async unexposePort(port: number): Promise<void> {
    await this.rpc.sandboxes.unexposePort({ name: this.name, port });
  }

  async getExposedPorts(): Promise<{ port: number; url: string }[]> {
    return (await this.rpc.sandboxes.listExposedPorts({ name: this.name })).ports.map((p) => ({ port: p.port, url: p.url }));
  }

  // --- code ---

  async createCodeContext(o: CodeContextOptions = {}): Promise<CodeContext> {
    await this.ensure();
    return createCodeContext(this.rpc, this.name, o);
  }

  async listCodeContexts(): Promise<CodeContext[]> {
    await this.ensure();
    return (await this.rpc.code.listCodeContexts({ sandbox: this.name })).contexts.map(codeContext);
  }

  async deleteCodeContext(ctx: CodeContext | string): Promise<void> {
    await this.rpc.code.deleteCodeContext({ sandbox: this.name, id: typeof ctx === "string" ? ctx : ctx.id });
  }

  /** Runs a cell; output streams to the callbacks as it is printed. */
  async runCode(code: string, o: RunCodeOptions = {}): Promise<Execution> {
    await this.ensure();
    return runCode(this.rpc, this.name, code, o);
  }

  // --- watch ---

  /** Streams filesystem changes under path. */
  async *watch(path: string, o: WatchOptions = {}): AsyncGenerator<WatchEvent> {
    await this.ensure();
    yield* watchEvents(this.rpc, this.name, path, o);
  }

  /** Whether anything changed under path since a version seen on a watch with the same filters. */
  async checkChanges(path: string, o: WatchOptions & { since: string }): Promise<ChangesResult> {
    await this.ensure();
    return checkChanges(this.rpc, this.name, path, o);
  }

  // --- sessions and environment ---

  /** Creates a session (AlreadyExistsError if the id is taken). */
  async createSession(o: { id?: string; cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<Session> {
    await this.ensure();
    const s = await this.rpc.process.createSession({ sandbox: this.name, id: o.id ?? "", cwd: o.cwd ?? "", env: envMap(o.env) });
    return new Session(this, s.id, s.cwd);
  }

  /** A session by id ("default" always exists). */
  getSession(id: string): Session {
    return new Session(this, id, "");
  }

  /** Sets (or, with undefined values, unsets) variables every later exec, process and session sees. */
  async setEnvVars(vars: Record<string, string | undefined>, o: { session?: string } = {}): Promise<void> {
    await this.ensure();
    const unset = Object.entries(vars).filter(([, v]) => v === undefined).map(([k]) => k);
    await this.rpc.process.setEnv({ sandbox: this.name, session: o.session ?? "", set: envMap(vars), unset });
  }

  // --- terminals ---

  /** Starts a shell on a new PTY and attaches to it. */
  async terminal(o: TerminalOptions = {}): Promise<TerminalConnection> {
    await this.ensure();
    const t = await this.rpc.terminals.createTerminal({
      sandbox: this.name,
      id: o.id ?? "",
      argv: o.command ?? [],
      cwd: o.cwd ?? "",
      env: envMap(o.env),
      cols: o.cols ?? 0,
      rows: o.rows ?? 0,
    });
    return this.attachTerminal(t.id);
  }

  /** Attaches to an existing terminal; the server first replays what it kept. */
  attachTerminal(id: string): Promise<TerminalConnection> {
    return TerminalConnection.open(this.terminalUrl(id), id, async () => {
      await this.rpc.terminals.closeTerminal({ sandbox: this.name, id });
    });
  }

  /** The terminal's WebSocket URL (ws:// or wss://), with the token if any. */
  terminalUrl(id: string): string {
    const base = this.rpc.baseUrl.replace(/^http/, "ws");
    const q = this.rpc.token ? `?token=${encodeURIComponent(this.rpc.token)}` : "";
    return `${base}/v1/sandboxes/${encodeURIComponent(this.name)}/terminals/${encodeURIComponent(id)}${q}`;
  }

  // --- snapshots, forks, backups ---

  /** Captures the disk while processes are frozen; the sandbox keeps running. */
  async snapshot(o: { ttl?: DurationLike } = {}): Promise<Snapshot> {
    await this.ensure();
    return snapshotInfo(await this.rpc.snapshots.createSnapshot({ name: this.name, ttl: o.ttl === undefined ? undefined : toDuration(o.ttl) }));
  }

  async listSnapshots(): Promise<Snapshot[]> {
    return (await this.rpc.snapshots.listSnapshots({ sandbox: this.name })).snapshots.map(snapshotInfo);
  }

  /**
   * New sandboxes with this one's disk: name, or name-1 … name-N with count
   * (as `hutch fork -n`), or an array of names. From a fresh snapshot unless one is given.
   */
  async fork(
    names: string | string[],
    o: { count?: number; snapshot?: string; sleepAfter?: DurationLike; keepAlive?: boolean } = {},
  ): Promise<{ snapshot: string; sandboxes: SandboxInfo[] }> {
    await this.ensure();
    let news = Array.isArray(names) ? names : [names];
    if (o.count !== undefined) {
      if (Array.isArray(names) || o.count < 1) throw new InvalidArgumentError("fork count: want a single name and count ≥ 1");
      news = Array.from({ length: o.count }, (_, i) => `${names}-${i + 1}`);
    }
    const r = await this.rpc.snapshots.fork({
      name: this.name,
      newNames: news,
      snapshot: o.snapshot ?? "",
      sleepAfter: o.sleepAfter === undefined ? undefined : toDuration(o.sleepAfter),
      keepAlive: o.keepAlive ?? false,
    });
    return { snapshot: r.snapshot, sandboxes: r.sandboxes.map(sandboxInfo) };
  }

  /** Archives a directory (default /workspace) into the daemon's blob store. */
  async createBackup(o: { dir?: string; name?: string; excludes?: string[]; gitignore?: boolean; ttl?: DurationLike } = {}): Promise<Backup> {
    await this.ensure();
    const b = await this.rpc.backups.createBackup({
      sandbox: this.name,
      dir: o.dir ?? "/workspace",
      name: o.name ?? "",
      excludes: o.excludes ?? [],
      gitignore: o.gitignore ?? false,
      ttl: o.ttl === undefined ? undefined : toDuration(o.ttl),
    });
    return backupInfo(b);
  }

  /** Replaces a directory's contents with a backup's (by default the directory it was taken of). */
  async restoreBackup(backup: Backup | string, o: { dir?: string } = {}): Promise<{ files: number }> {
    await this.ensure();
    const r = await this.rpc.backups.restoreBackup({ id: typeof backup === "string" ? backup : backup.id, sandbox: this.name, dir: o.dir ?? "" });
    return { files: Number(r.files) };
  }

  // --- lifecycle and policy ---

  /** Stops every process and frees memory; the disk stays and the next call wakes it. */
  async sleep(): Promise<SleepInfo> {
    const s = await this.rpc.snapshots.sleep({ name: this.name });
    return { sleeping: s.sleeping, sleepAfterMs: durationMillis(s.sleepAfter), keepAlive: s.keepAlive, sleepsAt: toDate(s.sleepsAt) };
  }

  /** Sets when the sandbox sleeps; unset fields keep their value. */
  async setSleep(o: { sleepAfter?: DurationLike; keepAlive?: boolean }): Promise<SleepInfo> {
    await this.ensure();
    const s = await this.rpc.snapshots.configureSleep({ name: this.name, sleepAfter: o.sleepAfter === undefined ? undefined : toDuration(o.sleepAfter), keepAlive: o.keepAlive });
    return { sleeping: s.sleeping, sleepAfterMs: durationMillis(s.sleepAfter), keepAlive: s.keepAlive, sleepsAt: toDate(s.sleepsAt) };
  }

  /** Stops the sandbox and removes everything it had. */
  async destroy(): Promise<void> {
    await this.rpc.sandboxes.delete({ name: this.name });
    this.ready = undefined;
  }

  /** Replaces the egress policy; it applies to the next connection. Returns it with defaults filled in. */
  async setPolicy(policy: Policy): Promise<Policy> {
    const r = await this.rpc.egress.setPolicy({ sandbox: this.name, policy: JSON.stringify(policy), create: true });
    return JSON.parse(r.policy) as Policy;
  }

  async getPolicy(): Promise<Policy> {
    return JSON.parse((await this.rpc.egress.getPolicy({ sandbox: this.name })).policy) as Policy;
  }
}
