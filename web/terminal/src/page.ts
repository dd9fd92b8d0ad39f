// The daemon's terminal page, /terminal/NAME[?id=ID][#token=KEY]: creates a
// terminal in the sandbox (or reattaches to ?id=), fits it to the window and
// keeps the id in the URL, so a reload reattaches and replays.
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import { SandboxAddon, terminalUrl } from "@hutch-sh/sdk/xterm";

const sandbox = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] ?? "");
const token = new URLSearchParams(location.hash.slice(1)).get("token") ?? undefined;
const status = document.getElementById("status")!;

function show(state: string, text: string): void {
  document.body.dataset.state = state;
  status.textContent = text;
}

async function createTerminal(cols: number, rows: number): Promise<string> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const resp = await fetch("/hutch.v1.TerminalService/CreateTerminal", {
    method: "POST",
    headers,
    body: JSON.stringify({ sandbox, cols, rows }),
  });
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.message ?? resp.statusText);
  return body.id;
}

async function main(): Promise<void> {
  const term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 10_000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById("terminal")!);
  fit.fit();
  addEventListener("resize", () => fit.fit());
  (window as unknown as { hutch: unknown }).hutch = { term };

  const params = new URLSearchParams(location.search);
  let id = params.get("id");
  if (!id) {
    id = await createTerminal(term.cols, term.rows);
    params.set("id", id);
    history.replaceState(null, "", `${location.pathname}?${params}${location.hash}`);
  }
  const addon = new SandboxAddon({
    getWebSocketUrl: ({ origin, sandbox, terminal }) => terminalUrl(origin, { sandbox, terminal }, token),
    onStateChange: (state, detail) => {
      const text = state === "exited" ? `exited with code ${detail?.code}` : state;
      show(state, `${sandbox} · ${id} · ${text}`);
    },
    onServerError: (message) => console.warn("hutch terminal:", message),
  });
  term.loadAddon(addon);
  addon.connect({ sandbox, terminal: id });
  term.focus();
}

main().catch((err) => show("error", `error: ${err instanceof Error ? err.message : err}`));
