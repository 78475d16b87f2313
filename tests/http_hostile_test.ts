// Hostile requests over a real server (Deno.serve, Bun.serve or node:http, whichever runs
// the test), sent on raw sockets so that Host headers and paths arrive as written: DNS
// rebinding reads, malformed Host headers, and keys that URLs would resolve to another.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, type InspectorOptions, serve } from "../src/http/mod.ts";
import { keyGrammarError } from "../src/http/_write.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";

/** One request as written; resolves with the status code and the body. */
function raw(port: number, head: string, body = ""): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let out = "";
    const s = connect(port, "127.0.0.1", () => {
      const length = body ? `Content-Length: ${new TextEncoder().encode(body).length}\r\n` : "";
      s.write(`${head}\r\nConnection: close\r\n${length}\r\n${body}`);
    });
    s.on("data", (d) => out += d);
    s.on("close", () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0);
      resolve({ status, body: out.slice(out.indexOf("\r\n\r\n") + 4) });
    });
    s.on("error", reject);
  });
}

async function member(options: InspectorOptions) {
  const kv = await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
  await kv.set("secret", "s3cret");
  const server = await serve(createInspector(kv, options), { hostname: "127.0.0.1", port: 0 });
  return {
    kv,
    port: server.port,
    close: async () => {
      await server.close();
      await kv.close();
    },
  };
}

test("without a token, a loopback member answers only loopback Host names, reads included", async () => {
  const m = await member({ hostname: "127.0.0.1" });
  for (const path of ["/state", "/usr/secret", "/usr", "/events", "/metrics", "/"]) {
    const r = await raw(m.port, `GET ${path} HTTP/1.1\r\nHost: evil.example:${m.port}`);
    assert.equal(r.status, 403, path);
    assert.ok(!r.body.includes("s3cret"), path);
  }
  for (const host of ["127.0.0.1", "localhost", "[::1]", "app.localhost"]) {
    const r = await raw(m.port, `GET /usr/secret HTTP/1.1\r\nHost: ${host}:${m.port}`);
    assert.equal(r.status, 200, host);
  }
  await m.close();
});

test("with a token, reads answer any Host name", async () => {
  const m = await member({ hostname: "127.0.0.1", token: "t" });
  const r = await raw(m.port, `GET /usr/secret HTTP/1.1\r\nHost: kv.example`);
  assert.equal(r.status, 200);
  await m.close();
});

test("a malformed Host header gets 400, and nothing is logged", async () => {
  const m = await member({ hostname: "127.0.0.1", token: "t" });
  const logged: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void logged.push(args);
  try {
    for (const host of ["a b", "a/b", "a@b", "[::1"]) {
      const r = await raw(m.port, `GET /state HTTP/1.1\r\nHost: ${host}`);
      // Some servers refuse such a request themselves (400) before the app sees it.
      assert.equal(r.status, 400, host);
    }
  } finally {
    console.error = original;
  }
  assert.deepEqual(logged, []);
  await m.close();
});

test("keys that a URL would resolve to another route or key are refused with 400", async () => {
  const m = await member({ hostname: "127.0.0.1" });
  const host = `Host: 127.0.0.1:${m.port}`;
  for (
    const path of ["/usr/../healthz", "/usr/%2e%2e", "/usr/a//b", "/usr/a%5Cb"]
  ) {
    const r = await raw(m.port, `PUT ${path} HTTP/1.1\r\n${host}`, '"x"');
    // A server may resolve the path first: then it is not a key at all (404/405).
    assert.ok([400, 404, 405].includes(r.status), `${path}: ${r.status}`);
  }
  assert.deepEqual(m.kv.keys(), ["secret"], "no key written");
  const ok = await raw(m.port, `PUT /usr/a%2Fb HTTP/1.1\r\n${host}`, '"y"');
  assert.equal(ok.status, 204);
  assert.equal(m.kv.get("a/b"), "y");
  await m.close();
});

test("keyGrammarError() states the HTTP API's key grammar", () => {
  for (const good of ["a", "a/b", "user/42/name", "ü", "a.b", "..a", "%"]) {
    assert.equal(keyGrammarError(good), undefined, good);
  }
  for (
    const bad of ["", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "a\\b", "a\nb", "\u007f"]
  ) {
    assert.notEqual(keyGrammarError(bad), undefined, JSON.stringify(bad));
  }
});
