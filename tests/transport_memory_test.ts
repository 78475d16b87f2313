// The conformance suite against the in-memory network, in both time modes.
import { MemoryNetwork } from "../src/transport/memory.ts";
import { transportSuite } from "./_transport_suite.ts";

const virtual = new MemoryNetwork({ latencyMs: 3, mtu: 1400, virtualTime: true });
let nextVirtual = 0;
transportSuite({
  name: "memory (virtual time)",
  open: () => virtual.transport(`v${nextVirtual++}`),
  maxBytes: 1400,
  settle: () => {
    virtual.time!.advance(5);
    return Promise.resolve();
  },
});

const real = new MemoryNetwork({ latencyMs: 1, mtu: 1400 });
let nextReal = 0;
transportSuite({
  name: "memory (real time)",
  open: () => real.transport(`r${nextReal++}`),
  maxBytes: 1400,
  settle: () => new Promise((resolve) => setTimeout(resolve, 5)),
});
