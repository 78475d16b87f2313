// fast-check arbitraries shared by the property tests.
import fc from "fast-check";
import type { Entry, Section } from "../src/core/store.ts";

/** A small key space, so that generated entries collide on keys often. */
export const key: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("a", "b", "c", "d", "e", "key 1", "ключ", "🔑", "members/x"),
  fc.string({ minLength: 1, maxLength: 6 }),
);

/** Values of every kind the store accepts. */
export const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    fc.string(),
    fc.integer(),
    // CBOR (like JSON) has no integer -0: it comes back as 0.
    fc.double({ noNaN: true }).filter((x) => !Object.is(x, -0)),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 16 }),
    // Dates travel as CBOR tag 1 (float seconds): exact to the millisecond within ±63,000 years.
    fc.date({ noInvalidDate: true, min: new Date(-2e15), max: new Date(2e15) }),
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 5 }).filter((k) => k !== "__proto__"), tie("v"), {
      maxKeys: 4,
      noNullPrototype: true,
    }),
    fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), tie("v")), {
      maxLength: 3,
    })
      .map((pairs) => new Map(pairs)),
  ),
})).v;

/**
 * One version of one key, live or deleted. As in a real cluster, (section, key, stamp,
 * writer) identifies a version: its value and deleted flag are functions of them.
 */
export const entry: fc.Arbitrary<Entry> = fc.record({
  section: fc.constantFrom<Section>("usr", "sys"),
  key,
  wall: fc.integer({ min: 0, max: 50 }),
  logical: fc.nat(3),
  writer: fc.constantFrom("m1", "m2", "m3"),
}).map((e) => {
  const deleted = (e.wall + e.logical) % 4 === 0;
  return {
    ...e,
    deleted,
    value: deleted ? undefined : `${e.key}=${e.writer}@${e.wall}.${e.logical}`,
  };
});
