import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Ring } from "../src/core/ring.ts";

/** The records `ring` holds, oldest first, as [slot, number, string]. */
function held(ring: Ring): [number, number, string][] {
  const out: [number, number, string][] = [];
  for (let s = ring.start; s < ring.end; s++) {
    const i = ring.index(s);
    out.push([s, ring.numbers[0]![i]!, ring.strings[0]![i]!]);
  }
  return out;
}

test("a ring holds what a queue would, through growing and halving", () => {
  // Runs of pushes and shifts: long enough to grow past the halving floor and come back.
  const op = fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 3000 }));
  fc.assert(
    fc.property(fc.array(op, { maxLength: 12 }), (runs) => {
      const ring = new Ring(1, 1);
      const queue: [number, number, string][] = [];
      let slot = 0;
      for (const [push, n] of runs) {
        for (let k = 0; k < n; k++) {
          if (push) {
            const i = ring.push();
            ring.numbers[0]![i] = slot * 0.5;
            ring.strings[0]![i] = `r${slot}`;
            queue.push([slot, slot * 0.5, `r${slot}`]);
            slot++;
          } else if (queue.length > 0) {
            ring.shift();
            queue.shift();
          }
        }
        assert.equal(ring.size, queue.length);
        assert.equal(ring.end, slot, "slots are numbered as taken");
        assert.deepEqual(held(ring), queue);
      }
    }),
    { numRuns: 60 },
  );
});
