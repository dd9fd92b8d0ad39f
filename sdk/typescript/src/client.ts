// The entry point: one daemon, its sandboxes by name, and its secrets.
import { Rpc, type FetchLike } from "./rpc.js";
import { Sandbox, sandboxInfo, snapshotInfo, type SandboxInfo, type SandboxOptions, type Snapshot } from "./sandbox.js";
import { hostEnv } from "./util.js";

/** Where a local daemon listens. */
export const DEFAULT_URL = "http://127.0.0.1:7777";

export interface HutchOptions {
  /** The daemon; default HUTCH_URL, then (in a browser) the page's origin, then http://127.0.0.1:7777. */
  url?: string;
  /** API key; default HUTCH_TOKEN. */
  token?: string;
  /** A fetch to use instead of the global one. */
  fetch?: FetchLike;
}

/** Secrets live only in the daemon; sandboxes use them through egress policy rules. No call returns a value. */
export class Secrets {
  constructor(private readonly rpc: Rpc) {}
  /** Stores or rotates a secret; scope limits it to sandboxes whose name matches one of these globs. */
  async set(name: string, value: string, o: { scope?: string[] } = {}): Promise<void> {
    await this.rpc.egress.setSecret({ name, value, scope: o.scope ?? [] });
  }
  async delete(name: string): Promise<void> {
    await this.rpc.egress.deleteSecret({ name });
  }
  async list(): Promise<{ name: string; scope: string[] }[]> {
    const r = await this.rpc.egress.listSecrets({});
    return r.secrets.map((s) => ({ name: s.name, scope: s.scope }));
  }
}

export class Hutch {
  readonly url: string;
  readonly secrets: Secrets;
  private readonly rpc: Rpc;

  constructor(o: HutchOptions = {}) {
    // In a page served by the daemon, its own origin is the daemon.
    const origin = (globalThis as { location?: { origin?: string } }).location?.origin;
    const pageOrigin = origin && /^https?:/.test(origin) ? origin : undefined;
    this.url = (o.url || hostEnv("HUTCH_URL") || pageOrigin || DEFAULT_URL).replace(/\/+$/, "");
    const token = o.token || hostEnv("HUTCH_TOKEN");
    const f = o.fetch ?? globalThis.fetch.bind(globalThis);
    this.rpc = new Rpc(this.url, token, f);
    this.secrets = new Secrets(this.rpc);
  }

  /** The named sandbox; created with opts on first use if it does not exist. */
  sandbox(name: string, opts: SandboxOptions = {}): Sandbox {
    return new Sandbox(this.rpc, name, opts);
  }

  /** Alias of sandbox(), for code written against getSandbox. */
  getSandbox(name: string, opts: SandboxOptions = {}): Sandbox {
    return this.sandbox(name, opts);
  }

  async list(): Promise<SandboxInfo[]> {
    return (await this.rpc.sandboxes.list({})).sandboxes.map(sandboxInfo);
  }

  /** Every snapshot (or a sandbox's). */
  async listSnapshots(sandbox = ""): Promise<Snapshot[]> {
    return (await this.rpc.snapshots.listSnapshots({ sandbox })).snapshots.map(snapshotInfo);
  }

  /** FailedPreconditionError while sandboxes still stand on it. */
  async deleteSnapshot(id: string): Promise<void> {
    await this.rpc.snapshots.deleteSnapshot({ id });
  }

  async deleteBackup(id: string): Promise<void> {
    await this.rpc.backups.deleteBackup({ id });
  }

  /** Whether the daemon answers /healthz. */
  async healthy(): Promise<boolean> {
    try {
      await this.rpc.http("/healthz");
      return true;
    } catch {
      return false;
    }
  }
}
