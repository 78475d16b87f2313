import { test } from "node:test";
import assert from "node:assert/strict";
import { isLoopback, parseHostPort, splitAddress } from "../src/core/address.ts";

test("parseHostPort() reads host:port, [v6]:port, bare hosts and bare IPv6 literals", () => {
  assert.deepEqual(parseHostPort("10.0.0.1:7946"), {
    host: "10.0.0.1",
    port: 7946,
    bracketed: false,
  });
  assert.deepEqual(parseHostPort("[::1]:7946"), { host: "::1", port: 7946, bracketed: true });
  assert.deepEqual(parseHostPort("[fe80::1]"), {
    host: "fe80::1",
    port: undefined,
    bracketed: true,
  });
  assert.deepEqual(parseHostPort("node-a"), { host: "node-a", port: undefined, bracketed: false });
  assert.deepEqual(parseHostPort("::1"), { host: "::1", port: undefined, bracketed: false });
  assert.deepEqual(parseHostPort("1:2:3:4:5:6:7:8")?.port, undefined);
});

test("parseHostPort() refuses ports out of range, spaces and stray colons or brackets", () => {
  for (const bad of ["a:65536", "a:123456", "a b:1", "a:b:1", "[::1", "a]:1", "", ":1", "a:"]) {
    assert.equal(parseHostPort(bad), undefined, bad);
  }
});

test("isLoopback() knows loopback names and addresses, bracketed or not", () => {
  for (const h of ["localhost", "a.localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"]) {
    assert.equal(isLoopback(h), true, h);
  }
  for (const h of ["0.0.0.0", "::", "10.0.0.1", "example.com", "localhost.example", undefined]) {
    assert.equal(isLoopback(h), false, String(h));
  }
  assert.equal(isLoopback("0:0:0:0:0:0:0:1"), true);
  assert.equal(isLoopback("::ffff:127.0.0.1"), true);
});

test("parseHostPort() takes text only, a full IPv6 literal whole, and ports up to 65535", () => {
  assert.equal(parseHostPort(7946 as unknown as string), undefined);
  assert.deepEqual(parseHostPort("1:2:3:4:5:6:7:8"), {
    host: "1:2:3:4:5:6:7:8",
    port: undefined,
    bracketed: false,
  });
  assert.equal(parseHostPort("::g"), undefined, "hex digits and colons only");
  assert.equal(parseHostPort("fe80::1 x"), undefined);
  assert.deepEqual(parseHostPort("h:65535"), { host: "h", port: 65535, bracketed: false });
  assert.deepEqual(parseHostPort("h:0"), { host: "h", port: 0, bracketed: false });
});

test("splitAddress() reads the whole address, not a tail of it", () => {
  assert.deepEqual(splitAddress("a]b:80"), { host: "a]b:80", port: 0 });
  assert.deepEqual(splitAddress("[fe80::1]:80"), { host: "fe80::1", port: 80 });
});

test("isLoopback() matches whole addresses only", () => {
  for (
    const h of [
      "x127.0.0.1",
      "127.0.0.1x",
      "[127.0.0].1",
      "127.0.0.1[]",
      "x0:0:0:0:0:0:0:1",
      "0:0:0:0:0:0:0:1x",
      "x::ffff:127.0.0.1",
      "::ffff:127.0.0.1x",
    ]
  ) {
    assert.equal(isLoopback(h), false, h);
  }
  for (
    const h of [
      "127.0.0.10",
      "127.255.255.254",
      "0000:0000:0000:0000:0000:0000:0000:0001",
      "::ffff:127.0.0.10",
      "[::FFFF:127.0.0.1]",
      "LOCALHOST",
    ]
  ) {
    assert.equal(isLoopback(h), true, h);
  }
});
