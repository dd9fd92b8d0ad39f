// The SDK against a real daemon: exec, streams, cancellation, typed errors,
// files, processes, previews, code, watch, terminals, snapshots and forks.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import {
  Hutch,
  HutchError,
  CanceledError,
  DeadlineExceededError,
  InvalidArgumentError,
  NotFoundError,
} from "../dist/index.js";
import { skipReason, startDaemon } from "./daemon.mjs";

const skip = skipReason();
let daemon;
let hutch;
let sb;

before(async () => {
  if (skip) return;
  daemon = await startDaemon();
  hutch = new Hutch({ url: daemon.url });
  sb = hutch.sandbox("ts-sdk");
});

after(async () => {
  if (daemon) await daemon.stop(hutch);
});

const it = (name, fn) => test(name, { skip, timeout: 120_000 }, fn);

async function eventually(fn, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

it("exec: exit codes, stdout and stderr, argv, cwd and env", async () => {
  const r = await sb.exec("echo hi; echo oops >&2; exit 3");
  assert.deepEqual([r.stdout, r.stderr, r.exitCode, r.success], ["hi\n", "oops\n", 3, false]);
  const ok = await sb.exec(["sh", "-c", 'echo "$PWD $FOO"'], { cwd: "/tmp", env: { FOO: "bar" } });
  assert.equal(ok.stdout, "/tmp bar\n");
  assert.ok(ok.success);
});

it("exec: callbacks see output as it arrives, stdin is fed", async () => {
  const seen = [];
  const r = await sb.exec("echo one; sleep 0.3; echo two >&2", { onStdout: (d) => seen.push(["out", d]), onStderr: (d) => seen.push(["err", d]) });
  assert.deepEqual(seen, [["out", "one\n"], ["err", "two\n"]]);
  assert.equal(r.exitCode, 0);
  const big = "x".repeat(600_000) + "\n";
  const cat = await sb.exec("wc -c", { stdin: big });
  assert.equal(cat.stdout.trim(), String(big.length));
  const lines = await sb.exec(["cat"], { stdin: new Blob(["a\n", "b\n"]).stream() });
  assert.equal(lines.stdout, "a\nb\n");
});

it("execStream: events in order, ending with exit", async () => {
  const types = [];
  let out = "";
  let last;
  for await (const ev of sb.execStream("echo a; sleep 0.2; echo b; exit 4")) {
    types.push(ev.type);
    if (ev.type === "stdout") out += ev.data;
    last = ev;
  }
  assert.equal(types[0], "start");
  assert.equal(out, "a\nb\n");
  assert.equal(last.type, "exit");
  assert.equal(last.exitCode, 4);
});

it("exec: an AbortSignal kills the remote process tree; a timeout is DeadlineExceededError", async () => {
  const ctrl = new AbortController();
  const p = sb.exec("sh -c 'sleep 301' & echo started; wait", {
    signal: ctrl.signal,
    onStdout: (d) => d.includes("started") && ctrl.abort(),
  });
  await assert.rejects(p, (err) => err instanceof CanceledError && err instanceof HutchError && err.code === "canceled");
  // The pattern does not match its own command line.
  const count = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done | grep -c 'sleep 30[1]'";
  await eventually(async () => assert.equal((await sb.exec(count)).stdout.trim(), "0"));

  const t0 = Date.now();
  await assert.rejects(sb.exec("sleep 30", { timeout: 500 }), DeadlineExceededError);
  assert.ok(Date.now() - t0 < 15_000);
});

it("errors are typed by wire code", async () => {
  await assert.rejects(hutch.sandbox("Not_A_Name").exec("true"), (err) => err instanceof InvalidArgumentError && err.code === "invalid_argument" && /name/.test(err.message));
  await assert.rejects(hutch.sandbox("ts-sdk-nobody").info(), (err) => err instanceof NotFoundError && err.code === "not_found");
  await assert.rejects(sb.readFile("/workspace/no/such/file"), NotFoundError);
  await assert.rejects(sb.startProcess("true").then((p) => sb.getProcess("no-such-process").info()), NotFoundError);
});

it("files: text and bytes round trip, streams, list, rename, delete", async () => {
  await sb.writeFile("/workspace/f/a.txt", "héllo");
  assert.equal(await sb.readFile("/workspace/f/a.txt"), "héllo");
  const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
  await sb.writeFile("/workspace/f/b.bin", bytes);
  assert.deepEqual(await sb.readFile("/workspace/f/b.bin", { encoding: "bytes" }), bytes);
  async function* gen() {
    yield "streamed ";
    yield new TextEncoder().encode("content");
  }
  await sb.writeFile("/workspace/f/c.txt", gen());
  const stream = await sb.readFile("/workspace/f/c.txt", { encoding: "stream" });
  assert.equal(await new Response(stream).text(), "streamed content");

  await sb.mkdir("/workspace/f/d/e", { recursive: true });
  const names = (await sb.listFiles("/workspace/f")).map((e) => `${e.name}:${e.type}`).sort();
  assert.deepEqual(names, ["a.txt:file", "b.bin:file", "c.txt:file", "d:directory"]);
  await sb.renameFile("/workspace/f/a.txt", "/workspace/f/d/a.txt");
  assert.equal(await sb.exists("/workspace/f/a.txt"), false);
  assert.equal(await sb.exists("/workspace/f/d/a.txt"), true);
  await sb.deleteFile("/workspace/f", { recursive: true });
  assert.equal(await sb.exists("/workspace/f"), false);
});

it("processes: waitForLog, waitForPort, exposePort and the preview URL, kill", async () => {
  await sb.writeFile("/workspace/site/index.html", "hello preview");
  const proc = await sb.startProcess("python3 -u -m http.server 8123", { cwd: "/workspace/site", processId: "web" });
  assert.equal(proc.id, "web");
  const { line, match } = await proc.waitForLog(/Serving HTTP on .* port (\d+)/, { timeout: 30_000 });
  assert.match(line, /Serving HTTP/);
  assert.equal(match[1], "8123");
  await proc.waitForPort(8123, { mode: "http" });
  const { url } = await sb.exposePort(8123);
  assert.match(url, /^http:\/\/8123-ts-sdk-[a-z0-9]{16}\.localhost:\d+\/$/);
  // Through the daemon, as a browser resolving *.localhost to loopback would.
  const body = await new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: "127.0.0.1", port: u.port, path: "/index.html", headers: { Host: u.host } }, (res) => {
      let b = "";
      res.on("data", (c) => (b += c));
      res.on("end", () => resolve(`${res.statusCode} ${b}`));
    });
    req.on("error", reject);
    req.end();
  });
  assert.equal(body, "200 hello preview");
  const killed = await proc.kill();
  assert.notEqual(killed.status, "running");
  const ended = await proc.waitForExit();
  assert.notEqual(ended.status, "running");
});

it("runCode: python with a stdout callback and a rich result", async () => {
  const ctx = await sb.createCodeContext({ language: "python" });
  const out = [];
  const results = [];
  await sb.runCode("x = 6", { context: ctx });
  const res = await sb.runCode("print('hello', x * 7)\n{'a': x}", { context: ctx, onStdout: (o) => out.push(o.text), onResult: (r) => results.push(r) });
  assert.equal(out.join(""), "hello 42\n");
  assert.deepEqual(res.logs.stdout, ["hello 42\n"]);
  assert.equal(res.results.length, 1);
  assert.equal(results[0], res.results[0]);
  assert.equal(res.results[0].text, "{'a': 6}");
  assert.equal(res.text, "{'a': 6}");
  assert.equal(res.error, undefined);
  const bad = await sb.runCode("1/0", { context: ctx });
  assert.equal(bad.error?.name, "ZeroDivisionError");
  assert.equal(bad.status, "error");
});

it("watch sees a created file; checkChanges tells what changed since", async () => {
  await sb.mkdir("/workspace/w", { recursive: true });
  let version;
  for await (const ev of sb.watch("/workspace/w", { include: ["*.ts"] })) {
    if (ev.type === "started") {
      version = ev.version;
      await sb.writeFile("/workspace/w/skip.txt", "no");
      await sb.writeFile("/workspace/w/a.ts", "export {}");
      continue;
    }
    assert.equal(ev.path, "/workspace/w/a.ts");
    break;
  }
  const changes = await sb.checkChanges("/workspace/w", { include: ["*.ts"], since: version });
  assert.equal(changes.status, "changed");
  assert.ok(changes.paths.includes("/workspace/w/a.ts"), JSON.stringify(changes));
});

it("sessions keep cwd and env; setEnvVars reaches later execs", async () => {
  const s = await sb.createSession({ id: "work", cwd: "/tmp" });
  await s.exec("mkdir -p inner && cd inner && export ZED=1");
  assert.equal((await s.exec('echo "$PWD $ZED"')).stdout, "/tmp/inner 1\n");
  await sb.setEnvVars({ GREETING: "hey" });
  assert.equal((await sb.exec('echo "$GREETING"')).stdout, "hey\n");
  await s.delete();
  const withOpts = hutch.sandbox("ts-sdk-opts", { env: { FROM_OPTS: "yes" }, keepAlive: true });
  assert.equal((await withOpts.exec('echo "$FROM_OPTS"')).stdout, "yes\n");
  await withOpts.destroy();
});

it("terminal: a browser-free round trip over the WebSocket", async () => {
  const term = await sb.terminal({ cols: 100, rows: 30 });
  term.write("echo hi$((40+2))\r");
  await term.waitFor("hi42");
  term.write("exit 7\r");
  assert.equal(await term.exited, 7);
  term.close();
});

it("snapshot, start from it, and fork", async () => {
  // A sandbox of its own: the others hold unix sockets (kernels, terminals), which snapshots cannot capture yet.
  const sb = hutch.sandbox("ts-sdk-snap");
  await sb.writeFile("/workspace/snap.txt", "from the snapshot");
  const snap = await sb.snapshot();
  assert.ok(snap.id);
  const copy = hutch.sandbox("ts-sdk-copy");
  await copy.start({ snapshot: snap.id });
  assert.equal(await copy.readFile("/workspace/snap.txt"), "from the snapshot");
  const forked = await sb.fork("ts-sdk-fork", { count: 2 });
  assert.deepEqual(forked.sandboxes.map((s) => s.name).sort(), ["ts-sdk-fork-1", "ts-sdk-fork-2"]);
  assert.equal(await hutch.sandbox("ts-sdk-fork-2").readFile("/workspace/snap.txt"), "from the snapshot");
  for (const n of ["ts-sdk-copy", "ts-sdk-fork-1", "ts-sdk-fork-2"]) await hutch.sandbox(n).destroy();
});

it("backups restore a directory; sleep keeps the disk and the next call wakes; policy and secrets", async () => {
  const sb = hutch.sandbox("ts-sdk-life");
  await sb.writeFile("/workspace/keep.txt", "v1");
  const backup = await sb.createBackup({ dir: "/workspace" });
  await sb.writeFile("/workspace/keep.txt", "v2");
  assert.deepEqual(await sb.restoreBackup(backup), { files: 1 });
  assert.equal(await sb.readFile("/workspace/keep.txt"), "v1");

  assert.equal((await sb.sleep()).sleeping, true);
  assert.equal((await sb.info()).state, "sleeping");
  assert.equal((await sb.exec("cat /workspace/keep.txt")).stdout, "v1");
  assert.equal((await sb.info()).state, "running");

  assert.equal((await sb.setPolicy({ internet: false })).internet, false);
  await hutch.secrets.set("TS_SDK_TOKEN", "s3cret", { scope: ["ts-sdk-*"] });
  assert.deepEqual((await hutch.secrets.list()).find((s) => s.name === "TS_SDK_TOKEN"), { name: "TS_SDK_TOKEN", scope: ["ts-sdk-*"] });
  await hutch.secrets.delete("TS_SDK_TOKEN");
  await sb.destroy();
  await assert.rejects(sb.info(), NotFoundError);
});
