// Starts a real `hutch serve` for the tests (HUTCH_BIN, default bin/ of the
// checkout; HUTCH_CACHE, default /var/cache/hutch) on a fresh data dir, and
// removes its sandboxes and the dir afterwards. Without root or the default
// image the tests skip, except under CI=true, where they fail.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(import.meta.url), "../../../..");
const bin = process.env.HUTCH_BIN || join(root, "bin");
const cache = process.env.HUTCH_CACHE || "/var/cache/hutch";

/** Why the tests cannot run here, or undefined. */
export function missing() {
  if (process.getuid?.() !== 0) return "needs root";
  if (!existsSync(join(bin, "hutch"))) return `no ${join(bin, "hutch")} (make build)`;
  if (!existsSync(cache)) return `no image cache ${cache} (make image)`;
  return undefined;
}

/** Skip reason for node:test, or throws under CI=true. */
export function skipReason() {
  const why = missing();
  if (why && process.env.CI === "true") throw new Error(`TypeScript SDK tests cannot run under CI: ${why}`);
  return why;
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export async function startDaemon() {
  const data = mkdtempSync(join(tmpdir(), "hutch-ts-data-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = spawn(join(bin, "hutch"), ["serve", "--listen", `127.0.0.1:${port}`, "--data", data, "--cache", cache], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  proc.stdout.on("data", (b) => (log += b));
  proc.stderr.on("data", (b) => (log += b));
  const exited = new Promise((res) => proc.once("exit", res));
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(url + "/healthz")).ok) break;
    } catch {}
    if (proc.exitCode !== null) throw new Error(`daemon exited before it was healthy:\n${log}`);
    if (Date.now() > deadline) throw new Error(`daemon not healthy:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    log: () => log,
    /** Removes every sandbox, stops the daemon and removes its data. */
    async stop(hutch) {
      try {
        for (const s of await hutch.list()) await hutch.sandbox(s.name).destroy().catch(() => {});
      } finally {
        proc.kill("SIGTERM");
        await exited;
        rmSync(data, { recursive: true, force: true });
      }
    },
  };
}
