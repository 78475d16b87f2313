// The dashboard in a real browser: headless Chromium from Debian (`chromium`, installed by
// .ci/run), driven by playwright-core. A key written through the API appears on the page
// without a reload, and the page fits a phone (390 px) and a laptop (1280 px) with a
// 600-character value. Screenshots go to .scratch/screenshots/ (ignored by git); the one the
// README shows, docs/screenshots/dashboard.png, is refreshed only with
// GOSSIP_KV_UPDATE_SCREENSHOTS=1. Without a browser the tests are skipped, saying how to
// install one; under CI=true they fail instead.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import type { Server } from "../src/http/serve.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { eventually } from "./_http.ts";
import { skipBecause } from "./_skip.ts";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
const CHROMIUM = [process.env.GOSSIP_KV_CHROMIUM, ...CANDIDATES]
  .find((p): p is string => p !== undefined && p !== "" && existsSync(p));
const NO_BROWSER = `no Chromium at ${CANDIDATES.join(", ")} or $GOSSIP_KV_CHROMIUM; ` +
  "install one with: sudo apt-get install chromium";
const skip = CHROMIUM ? false : skipBecause("the dashboard in a real browser", NO_BROWSER);
const SHOTS = fileURLToPath(new URL("../.scratch/screenshots/", import.meta.url));
const README_SHOT = fileURLToPath(new URL("../docs/screenshots/dashboard.png", import.meta.url));
const FAST = { gossipIntervalMs: 100, probeIntervalMs: 200 };

/** Saves a full-page screenshot under .scratch/screenshots/ and returns its path. */
async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true });
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, type: "png", fullPage: true });
  console.log(`screenshot: ${path}`);
  return path;
}

/** The browser's path; fails (when the tests run although it is missing: under CI=true) */
function requireChromium(): string {
  assert.ok(CHROMIUM, `${NO_BROWSER} (CI=true: the browser tests may not be skipped)`);
  return CHROMIUM;
}

/** A headless Chromium with its own profile, at `width` x `height`; closed by `close()`. */
async function browser(width: number, height: number): Promise<{
  context: BrowserContext;
  close(): Promise<void>;
}> {
  const profile = mkdtempSync(join(tmpdir(), "gossip-kv-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: requireChromium(),
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width, height },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Opens the dashboard and waits until it has loaded everything once. */
async function openDashboard(context: BrowserContext, server: Server): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${server.url}/`);
  await page.waitForSelector('body[data-live="true"]');
  return page;
}

/**
 * Where the page is wider than its viewport, or a card's content wider than the card. (A string
 * for the page to run: the tests are type-checked without the DOM's types.)
 */
const OVERFLOWS = `(() => {
  const out = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth) {
    out.push("the page is " + doc.scrollWidth + " px wide in a " + doc.clientWidth + " px viewport");
  }
  for (const section of document.querySelectorAll("section")) {
    const name = section.querySelector("h2")?.textContent ?? "?";
    const box = section.getBoundingClientRect();
    if (box.right > doc.clientWidth || box.left < 0) {
      out.push("card " + name + " spans " + box.left + "-" + box.right + " px, off the screen");
    }
    if (section.scrollWidth > section.clientWidth) {
      out.push("card " + name + ": content " + section.scrollWidth + " px wide, " +
        section.clientWidth + " px shown");
    }
  }
  return out;
})()`;

test("the dashboard shows a key written through the API without a reload", { skip }, async () => {
  requireChromium();
  const net = new MemoryNetwork({ latencyMs: 1 });
  const start = (id: string, meta = {}) =>
    GossipKV.start({ id, transport: net.transport(id), seeds: ["ada"], meta, ...FAST });
  const ada = await start("ada", { region: "eu-west" });
  const others = [await start("bob"), await start("cyd"), await start("dee")];
  await ada.set("config/feature-flags", { search: true, beta: false });
  await others[0]!.set("users/42", { name: "Grace", roles: ["admin"] });
  await others[1]!.set("counter", 7);
  await eventually(() => ada.size === 3 && ada.members().length === 4, "the cluster to form");
  await others[2]!.close(); // dee leaves: shown in grey
  await eventually(() => ada.members().some((m) => m.status === "left"), "dee to leave");

  const server = await serve(createInspector(ada, { hostname: "127.0.0.1" }));
  const chrome = await browser(1280, 820);
  try {
    const page = await chrome.context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
    page.on("request", (r) => {
      if (!r.url().startsWith(server.url)) problems.push(`request outside the origin: ${r.url()}`);
    });
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-live="true"]');
    assert.equal(await page.locator("#members tbody tr").count(), 4);
    assert.equal(await page.locator("#members tr.alive").count(), 3);
    assert.equal(await page.locator("#members tr.left").count(), 1);
    assert.equal(await page.locator("#keys tbody tr").count(), 3);
    await page.evaluate(() => Object.assign(globalThis, { notReloaded: true }));

    const put = await fetch(`${server.url}/usr/${encodeURIComponent("greeting/from-api")}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "hello from the API" }),
    });
    assert.equal(put.status, 204);
    const row = page.locator('#keys tr[data-key="greeting/from-api"]');
    await row.waitFor();
    assert.match(await row.innerText(), /hello from the API/);
    assert.match(await row.innerText(), /\bada\b/, "the writer is shown");
    await others[1]!.set("counter", 8); // a remote write, through gossip
    await page.waitForSelector('#keys tr[data-key="counter"] >> text=8');
    assert.match(await page.locator("#stream").innerText(), /greeting\/from-api/);
    assert.equal(await page.evaluate(() => "notReloaded" in globalThis), true, "no reload");
    await page.locator("#peers tbody tr").first().waitFor();
    await page.locator("#counts", { hasText: "4 keys" }).waitFor(); // the sync state follows

    const shot = await screenshot(page, "dashboard");
    if (process.env.GOSSIP_KV_UPDATE_SCREENSHOTS === "1") copyFileSync(shot, README_SHOT);

    const del = await fetch(`${server.url}/usr/counter`, { method: "DELETE" });
    assert.equal(del.status, 204);
    await row.page().locator('#keys tr[data-key="counter"]').waitFor({ state: "detached" });
    assert.deepEqual(problems, []);
  } finally {
    await chrome.close();
    await server.close();
    await Promise.all([ada, ...others].map((kv) => kv.close()));
  }
});

test("the dashboard fits a 390 px screen, and a 600-character value stays in its card at 1280 px", {
  skip,
}, async () => {
  requireChromium();
  const net = new MemoryNetwork({ latencyMs: 1 });
  const start = (id: string) =>
    GossipKV.start({ id, transport: net.transport(id), seeds: ["ada"], ...FAST });
  const ada = await start("ada");
  const bob = await start("bob");
  const long = "x".repeat(600);
  await ada.set("config/feature-flags", { search: true, beta: false });
  await bob.set("notes/long", long);
  await eventually(() => ada.size === 2 && ada.members().length === 2, "the cluster to form");
  const server = await serve(createInspector(ada, { hostname: "127.0.0.1" }));
  try {
    for (const [width, height] of [[390, 844], [1280, 820]] as const) {
      const chrome = await browser(width, height);
      try {
        const page = await openDashboard(chrome.context, server);
        await page.locator("#peers tbody tr").first().waitFor();
        assert.deepEqual(await page.evaluate<string[]>(OVERFLOWS), [], `at ${width} px`);
        const cells = await page.locator('#keys tr[data-key="notes/long"] td').evaluateAll(
          (tds) => {
            const card = tds[0]!.closest("section")!.getBoundingClientRect();
            return tds.map((td) => {
              const box = td.getBoundingClientRect();
              return {
                text: td.textContent,
                inside: box.left >= card.left && box.right <= card.right,
              };
            });
          },
        );
        assert.equal(cells.length, 4, "key, value, writer, time");
        assert.deepEqual(cells.map((c) => c.inside), [true, true, true, true], `at ${width} px`);
        assert.equal(cells[1]!.text, JSON.stringify(long), "the whole value is in the cell");
        assert.equal(cells[2]!.text, "bob", "the writer is shown");
        await ada.set(`notes/live-${width}`, long); // in the live changes, as it happens
        await page.locator("#stream li", { hasText: `notes/live-${width}` }).waitFor();
        assert.deepEqual(await page.evaluate<string[]>(OVERFLOWS), [], `at ${width} px, live`);
        await screenshot(page, `dashboard-${width}px`);
      } finally {
        await chrome.close();
      }
    }
  } finally {
    await server.close();
    await Promise.all([ada, bob].map((kv) => kv.close()));
  }
});
