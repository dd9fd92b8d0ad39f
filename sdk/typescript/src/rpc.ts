// The wire: Connect clients of every service over one fetch-based transport
// (Node ≥ 18 and browsers), plus plain HTTP for file contents.
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { SandboxService, ProcessService, FileService, WatchService } from "./gen/hutch/v1/hutch_pb.js";
import { TerminalService } from "./gen/hutch/v1/terminal_pb.js";
import { EgressService } from "./gen/hutch/v1/egress_pb.js";
import { CodeService } from "./gen/hutch/v1/code_pb.js";
import { SnapshotService, BackupService } from "./gen/hutch/v1/snapshot_pb.js";
import { fromResponse, toHutchError } from "./errors.js";

export type FetchLike = typeof globalThis.fetch;

export class Rpc {
  readonly sandboxes: Client<typeof SandboxService>;
  readonly process: Client<typeof ProcessService>;
  readonly files: Client<typeof FileService>;
  readonly watch: Client<typeof WatchService>;
  readonly terminals: Client<typeof TerminalService>;
  readonly egress: Client<typeof EgressService>;
  readonly code: Client<typeof CodeService>;
  readonly snapshots: Client<typeof SnapshotService>;
  readonly backups: Client<typeof BackupService>;

  constructor(
    readonly baseUrl: string,
    readonly token: string | undefined,
    private readonly fetchFn: FetchLike,
  ) {
    const auth: Interceptor = (next) => async (req) => {
      if (token) req.header.set("Authorization", `Bearer ${token}`);
      return next(req);
    };
    const transport = createConnectTransport({
      baseUrl,
      // The binary codec is the daemon's zero-copy path for exec output.
      useBinaryFormat: true,
      fetch: (input, init) => fetchFn(input, init),
      interceptors: [auth],
    });
    this.sandboxes = typed(createClient(SandboxService, transport));
    this.process = typed(createClient(ProcessService, transport));
    this.files = typed(createClient(FileService, transport));
    this.watch = typed(createClient(WatchService, transport));
    this.terminals = typed(createClient(TerminalService, transport));
    this.egress = typed(createClient(EgressService, transport));
    this.code = typed(createClient(CodeService, transport));
    this.snapshots = typed(createClient(SnapshotService, transport));
    this.backups = typed(createClient(BackupService, transport));
  }

  /** A plain HTTP request to the daemon; non-2xx answers throw typed errors. */
  async http(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token) headers.set("Authorization", `Bearer ${this.token}`);
    let resp: Response;
    try {
      resp = await this.fetchFn(this.baseUrl + path, { ...init, headers });
    } catch (err) {
      throw toHutchError(err);
    }
    if (!resp.ok) throw await fromResponse(resp);
    return resp;
  }
}

/**
 * Wraps a client so that every failure is a typed HutchError: unary calls
 * reject with one, and server streams throw one while iterating. (Connect
 * interceptors cannot do this: they may only throw ConnectErrors.)
 */
function typed<T extends object>(client: T): T {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const fn = Reflect.get(target, prop, receiver);
      if (typeof fn !== "function") return fn;
      return (...args: unknown[]) => {
        let out: unknown;
        try {
          out = fn.apply(target, args);
        } catch (err) {
          throw toHutchError(err);
        }
        if (out instanceof Promise) return out.catch((err) => Promise.reject(toHutchError(err)));
        if (out && typeof out === "object" && Symbol.asyncIterator in out) return typedStream(out as AsyncIterable<unknown>);
        return out;
      };
    },
  });
}

/** Iterates a server stream, turning its failures into typed errors. */
export async function* typedStream<T>(stream: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    for await (const m of stream) yield m;
  } catch (err) {
    throw toHutchError(err);
  }
}
