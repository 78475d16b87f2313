import { test } from "node:test";
import assert from "node:assert/strict";
import { isLoopback, parseHostPort } from "../src/core/address.ts";

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
