// GET /metrics: valid Prometheus text exposition, with the numbers of kv.stats(),
// kv.members() and kv.syncStatus().
import { test } from "node:test";
import assert from "node:assert/strict";
import { createInspector } from "../src/http/mod.ts";
import { HttpTransport } from "../src/transport/http.ts";
import { MAX_CANDIDATES_PER_SOURCE } from "../src/core/membership.ts";
import { Wire } from "../src/wire/wire.ts";
import { Cluster } from "./_cluster.ts";

interface Family {
  help: string;
  type: string;
  samples: Map<string, number>;
}

/** Parses the text format strictly; throws on any line that does not follow it. */
function parse(text: string): Map<string, Family> {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const families = new Map<string, Family>();
  let current: string | undefined;
  for (const line of text.slice(0, -1).split("\n")) {
    let m: RegExpExecArray | null;
    if ((m = /^# HELP (gossip_kv_[a-z_]+) (\S.*)$/.exec(line))) {
      assert.ok(!families.has(m[1]!), `family ${m[1]} appears once`);
      families.set(m[1]!, { help: m[2]!, type: "", samples: new Map() });
      current = m[1];
    } else if ((m = /^# TYPE (gossip_kv_[a-z_]+) (counter|gauge)$/.exec(line))) {
      assert.equal(m[1], current, "TYPE follows its HELP");
      families.get(current!)!.type = m[2]!;
    } else if (
      (m = /^(gossip_kv_[a-z_]+)\{((?:[a-z_]+="(?:[^"\\\n]|\\[\\"n])*",?)*)\} (\S+)$/.exec(line))
    ) {
      assert.equal(m[1], current, `sample ${line} belongs to the family above`);
      const value = Number(m[3] === "NaN" ? NaN : m[3]);
      assert.ok(m[3] === "NaN" || Number.isFinite(value), `value of ${line}`);
      const family = families.get(current!)!;
      assert.ok(!family.samples.has(m[2]!), `series ${line} appears once`);
      family.samples.set(m[2]!, value);
    } else {
      assert.fail(`Not exposition format: ${JSON.stringify(line)}`);
    }
  }
  for (const [name, f] of families) {
    assert.ok(f.type, `${name} has a TYPE`);
    if (f.type === "counter") assert.match(name, /_total$/);
  }
  return families;
}

const value = (families: Map<string, Family>, name: string, labels: string) =>
  families.get(`gossip_kv_${name}`)?.samples.get(labels);

test("/metrics is Prometheus text with the member's counters and gauges", async () => {
  const c = new Cluster({ latencyMs: 2 });
  const a = await c.add("a");
  const b = await c.add("b");
  c.run(1000);
  for (let i = 0; i < 20; i++) await b.set(`k${i}`, i);
  await b.delete("k0");
  c.run(3000);
  const res = await createInspector(a, { hostname: "127.0.0.1" }).request("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const families = parse(await res.text());
  const s = a.stats(), sync = a.syncStatus();
  const m = 'member="a"';
  assert.equal(value(families, "info", `${m},address="a"`), 1);
  assert.equal(value(families, "keys", m), 19);
  assert.equal(value(families, "tombstones", m), sync.tombstones);
  assert.equal(value(families, "members", `${m},status="alive"`), 2);
  assert.equal(value(families, "members", `${m},status="dead"`), 0);
  assert.equal(value(families, "datagrams_total", `${m},direction="in"`), s.datagramsIn);
  assert.equal(value(families, "bytes_total", `${m},direction="out"`), s.bytesOut);
  assert.equal(
    value(families, "messages_total", `${m},direction="in",type="tree"`),
    s.engine.messagesIn.tree,
  );
  assert.ok(value(families, "messages_total", `${m},direction="in",type="tree"`)! > 0);
  assert.ok(value(families, "message_bytes_total", `${m},direction="out",type="ping"`)! > 0);
  assert.equal(
    value(families, "rumor_entries_total", `${m},outcome="new"`),
    s.engine.rumorEntriesNew,
  );
  assert.equal(value(families, "sync_rounds_total", `${m},outcome="opened"`), s.engine.syncRounds);
  assert.equal(
    value(families, "sync_rounds_total", `${m},outcome="skipped"`),
    s.engine.syncRoundsSkipped,
  );
  assert.equal(value(families, "dropped_datagrams_total", `${m},reason="malformed"`), 0);
  assert.equal(value(families, "probes_total", `${m},outcome="sent"`), s.engine.probes);
  assert.ok(value(families, "convergence_lag_seconds", m)! >= 0);
  assert.ok(value(families, "sync_peer_last_timestamp_seconds", `${m},peer="b",event="started"`));
  assert.ok(!families.has("gossip_kv_http_datagrams_total"), "no HTTP transport, no HTTP metrics");
  for (
    const name of [
      "messages_total",
      "message_bytes_total",
      "datagrams_total",
      "bytes_total",
      "send_errors_total",
      "dropped_datagrams_total",
      "rumors_forwarded_total",
      "rumor_entries_total",
      "sync_rounds_total",
      "sync_entries_total",
      "refused_entries_total",
      "tombstones_collected_total",
      "probes_total",
      "suspicions_total",
      "refutations_total",
      "members",
      "keys",
      "tombstones",
      "convergence_lag_seconds",
    ]
  ) {
    assert.ok(families.has(`gossip_kv_${name}`), name);
    assert.ok(families.get(`gossip_kv_${name}`)!.help.length > 10, `${name} has help`);
  }
  await c.close();
});

test("/metrics counts dropped datagrams by reason, and the HTTP transport's traffic", async () => {
  const c = new Cluster();
  const a = await c.add("a");
  c.net.transport("x").send("a", new Uint8Array([0x58, 0x58, 1, 0, 0, 0]));
  c.run(10);
  const gossip = new HttpTransport({ url: "http://127.0.0.1:1" });
  gossip.listen(() => {});
  gossip.receive(new Uint8Array(1), new Headers({ "x-gossip-from": "http://p:1" }));
  const text = await (await createInspector(a, { gossip }).request("/metrics")).text();
  const families = parse(text);
  assert.equal(value(families, "dropped_datagrams_total", 'member="a",reason="bad-magic"'), 1);
  assert.equal(value(families, "http_datagrams_total", 'member="a",outcome="received"'), 1);
  assert.equal(value(families, "http_datagrams_total", 'member="a",outcome="failed"'), 0);
  await c.close();
});

test("/metrics counts membership candidates by outcome: proposed, admitted, refused, dropped", async () => {
  const c = new Cluster({ latencyMs: 2 });
  const a = await c.add("a");
  await c.add("b");
  // A stranger that never answers names itself and more members than one source may propose.
  const ghost = new Wire({ cluster: "default", sender: "ghost" });
  const named = Array.from({ length: MAX_CANDIDATES_PER_SOURCE + 10 }, (_, i) => ({
    type: "member" as const,
    id: `g${i}`,
    address: `g${i}`,
    incarnation: 0,
    status: "alive" as const,
  }));
  for (const d of ghost.encode(named)) c.net.deliver("ghost", "a", d);
  c.run(30_000);
  const families = parse(await (await createInspector(a).request("/metrics")).text());
  const family = families.get("gossip_kv_candidates_total")!;
  assert.equal(family.type, "counter");
  assert.match(family.help, /candidates until they answer a ping/);
  const e = a.stats().engine;
  const sample = (outcome: string) =>
    value(families, "candidates_total", `member="a",outcome="${outcome}"`);
  assert.deepEqual(
    ["proposed", "admitted", "refused", "dropped"].map(sample),
    [e.candidatesProposed, e.candidatesAdmitted, e.candidatesRefused, e.candidatesDropped],
  );
  assert.equal(e.candidatesAdmitted, 1, "b, which answered");
  assert.equal(e.candidatesProposed, 1 + MAX_CANDIDATES_PER_SOURCE, "b, and the ghost's share");
  assert.ok(e.candidatesRefused >= 10, `refused past the share: ${e.candidatesRefused}`);
  assert.equal(e.candidatesDropped, MAX_CANDIDATES_PER_SOURCE, "none of the ghost's answered");
  await c.close();
});

test("label values are escaped", async () => {
  const c = new Cluster();
  const a = await c.add('we"ird\\id\nx');
  const text = await (await createInspector(a).request("/metrics")).text();
  parse(text);
  assert.ok(text.includes('gossip_kv_keys{member="we\\"ird\\\\id\\nx"} 0'));
  await c.close();
});

test("no convergence lag sample before any remote write", async () => {
  const c = new Cluster();
  const a = await c.add("a");
  const families = parse(await (await createInspector(a).request("/metrics")).text());
  assert.equal(families.get("gossip_kv_convergence_lag_seconds")!.samples.size, 0);
  await c.close();
});
