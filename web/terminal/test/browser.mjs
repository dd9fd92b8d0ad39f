// End-to-end test of the terminal page in real headless Chromium:
//   node test/browser.mjs http://127.0.0.1:PORT/terminal/NAME SCREENSHOT.png
// Types a command and sees its output, resizes the window and sees the PTY
// follow, reloads and sees the output replayed. Exits non-zero on failure.
import { chromium } from "playwright-core";

const [url, shot] = process.argv.slice(2);
if (!url || !shot) {
  console.error("usage: browser.mjs URL SCREENSHOT");
  process.exit(2);
}
const timeout = 15_000;

// The terminal's visible text, from xterm's buffer (renderer-independent).
const screenText = () => {
  const b = window.hutch.term.buffer.active;
  const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? "");
  return lines.join("\n");
};

async function waitText(page, want) {
  try {
    await page.waitForFunction(
      ([f, w]) => new Function(`return (${f})()`)().includes(w),
      [screenText.toString(), want],
      { timeout },
    );
  } catch (err) {
    const text = await page.evaluate(`(${screenText})()`).catch(() => "?");
    throw new Error(`never saw ${JSON.stringify(want)} on screen:\n${text}`);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
let page;
try {
  page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
  page.on("console", (m) => console.log("page:", m.text()));
  await page.goto(url);
  await page.waitForSelector('body[data-state="connected"]', { timeout });
  await page.locator(".xterm").click();

  await page.keyboard.type("echo hello-$((6*7))\n");
  await waitText(page, "hello-42");
  console.log("typed a command and saw its output");

  await page.setViewportSize({ width: 640, height: 360 });
  await page.waitForFunction(() => window.hutch.term.cols < 80, null, { timeout });
  const { cols, rows } = await page.evaluate(() => ({ cols: window.hutch.term.cols, rows: window.hutch.term.rows }));
  await page.keyboard.type("stty size | sed 's/ /x/'\n");
  await waitText(page, `${rows}x${cols}`);
  console.log(`resized to ${cols}x${rows}; stty agrees`);

  const id = new URL(page.url()).searchParams.get("id");
  await page.reload();
  await page.waitForSelector('body[data-state="connected"]', { timeout });
  if (new URL(page.url()).searchParams.get("id") !== id) throw new Error("reload changed the terminal id");
  await waitText(page, "hello-42");
  console.log("reloaded and saw the output replayed");

  await page.locator(".xterm").click();
  await page.keyboard.type("echo after-reload-$((1+1))\n");
  await waitText(page, "after-reload-2");
  await page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);
} catch (err) {
  if (page) await page.screenshot({ path: shot }).catch(() => {});
  console.error(String(err?.stack ?? err));
  process.exitCode = 1;
} finally {
  await browser.close();
}
