// The official TypeScript MCP client drives hutch's MCP server over both
// transports: `hutch mcp` on stdio, and the daemon's /mcp over streamable
// HTTP. Needs a daemon at HUTCH_URL (HUTCH_TOKEN when it has keys) and the
// hutch binary in HUTCH_BIN; test/e2e/mcp_test.go runs it against one.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = process.env.HUTCH_URL;
const token = process.env.HUTCH_TOKEN ?? "";
const bin = path.join(process.env.HUTCH_BIN ?? "bin", "hutch");
if (!url) throw new Error("set HUTCH_URL to a running daemon");

const transports = {
  stdio: () => new StdioClientTransport({ command: bin, args: ["mcp"], env: { ...process.env }, stderr: "inherit" }),
  http: () =>
    new StreamableHTTPClientTransport(new URL("/mcp", url), {
      requestInit: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
    }),
};

const text = (res) => res.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");

for (const [name, transport] of Object.entries(transports)) {
  test(`MCP over ${name}`, async (t) => {
    const client = new Client({ name: "hutch-node-test", version: "1" });
    await client.connect(transport());
    const sb = `node-${name}-${process.pid}`;
    const call = async (tool, args, isError = false) => {
      const res = await client.callTool({ name: tool, arguments: args });
      assert.equal(Boolean(res.isError), isError, `${tool}: isError ${res.isError}: ${text(res)}`);
      return res;
    };
    try {
      await t.test("lists the tools, with schemas", async () => {
        const { tools } = await client.listTools();
        const names = tools.map((x) => x.name);
        for (const want of ["exec", "read_file", "write_file", "list_files", "run_code", "create_sandbox", "start_process", "expose_port", "destroy_sandbox"]) {
          assert.ok(names.includes(want), `no ${want} in ${names}`);
        }
        const exec = tools.find((x) => x.name === "exec");
        assert.equal(exec.inputSchema.type, "object");
        assert.deepEqual([...exec.inputSchema.required].sort(), ["command", "sandbox"]);
        assert.ok(exec.description.length > 40);
      });
      await t.test("exec", async () => {
        const res = await call("exec", { sandbox: sb, command: "echo hi; echo oops >&2; exit 3" });
        assert.match(text(res), /exit code 3/);
        assert.equal(res.structuredContent.exit_code, 3);
        assert.equal(res.structuredContent.stdout, "hi\n");
        assert.equal(res.structuredContent.stderr, "oops\n");
      });
      await t.test("write and read a file", async () => {
        await call("write_file", { sandbox: sb, path: "/workspace/dir/n.txt", content: "ünïcode\nline 2\n" });
        assert.equal(text(await call("read_file", { sandbox: sb, path: "dir/n.txt" })), "ünïcode\nline 2\n");
        assert.match(text(await call("list_files", { sandbox: sb, path: "/workspace/dir" })), /\/workspace\/dir\/n\.txt/);
      });
      await t.test("run code, with a chart", async () => {
        assert.match(text(await call("run_code", { sandbox: sb, code: "print(6*7)" })), /42/);
        const res = await call("run_code", { sandbox: sb, code: "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [3, 5])\nplt.show()" });
        const img = res.content.find((c) => c.type === "image");
        assert.ok(img, `no image in ${JSON.stringify(res.content).slice(0, 300)}`);
        assert.equal(img.mimeType, "image/png");
        assert.deepEqual([...Buffer.from(img.data, "base64").subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
      });
      await t.test("errors are tool errors", async () => {
        assert.match(text(await call("get_sandbox", { sandbox: `${sb}-missing` }, true)), /not found/);
        assert.match(text(await call("read_file", { sandbox: sb, path: "/nope.txt" }, true)), /nope\.txt/);
      });
    } finally {
      await client.callTool({ name: "destroy_sandbox", arguments: { sandbox: sb } }).catch(() => {});
      await client.close();
    }
  });
}
