// The dashboard in a real browser: headless Chromium from Debian (`chromium`, installed by
// .ci/run), driven by playwright-core. A key written through the API appears on the page
// without a reload; the test saves docs/screenshots/dashboard.png.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { eventually } from "./_http.ts";

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = fileURLToPath(new URL("../docs/screenshots/dashboard.png", import.meta.url));
const FAST = { gossipIntervalMs: 100, probeIntervalMs: 200 };

test("the dashboard shows a key written through the API without a reload", async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
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
  const profile = mkdtempSync(join(tmpdir(), "gossip-kv-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
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
    viewport: { width: 1280, height: 820 },
  });
  try {
    const page = await browser.newPage();
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

    mkdirSync(join(SCREENSHOT, ".."), { recursive: true });
    await page.screenshot({ path: `${SCREENSHOT}.tmp`, type: "png", fullPage: true });
    renameSync(`${SCREENSHOT}.tmp`, SCREENSHOT);

    const del = await fetch(`${server.url}/usr/counter`, { method: "DELETE" });
    assert.equal(del.status, 204);
    await row.page().locator('#keys tr[data-key="counter"]').waitFor({ state: "detached" });
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
    await server.close();
    await Promise.all([ada, ...others].map((kv) => kv.close()));
  }
});
