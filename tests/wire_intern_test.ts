import { test } from "node:test";
import assert from "node:assert/strict";
import { internedAt, internId } from "../src/wire/_entry.ts";
import { decodeDatagram, packDatagrams } from "../src/wire/codec.ts";
import { seededRandom } from "../src/core/random.ts";

test("internId() returns its argument's value, whatever the slot held before", () => {
  const random = seededRandom(7);
  // Far more ids than slots, some repeated: every slot is taken, replaced and hit.
  const ids = Array.from({ length: 2000 }, (_, i) => {
    const n = 1 + Math.floor(random() * 12);
    let s = "";
    for (let j = 0; j < n; j++) s += String.fromCharCode(32 + Math.floor(random() * 0x24f));
    return i % 3 === 0 ? `m${i % 40}` : s;
  });
  for (let round = 0; round < 3; round++) {
    for (const id of ids) {
      // A copy built anew, as a decoder builds one.
      const copy = [...id].join("");
      assert.equal(internId(copy), id);
    }
  }
  assert.equal(internId(""), "");
});

test("decoded sender, origin and writer equal what was sent, datagram after datagram", () => {
  const random = seededRandom(11);
  for (let i = 0; i < 500; i++) {
    const sender = `member-${Math.floor(random() * 600)}`;
    const origin = `member-${Math.floor(random() * 600)}`;
    const writer = `member-${Math.floor(random() * 600)}`;
    const [datagram] = packDatagrams(
      [
        {
          type: "tree",
          origin,
          seq: i,
          hop: 1,
          entries: [
            {
              section: "usr",
              key: `k${i}`,
              value: i,
              wall: 1e12 + i,
              logical: 0,
              writer,
              deleted: false,
            },
          ],
        },
        { type: "ihave", origin, hop: 0, seqs: [i, i + 2] },
      ],
      { cluster: "c", sender, mtu: 1400, nextFragmentId: () => 1 },
    );
    const d = decodeDatagram(datagram!, "c", 1400);
    assert.equal(d.kind, "envelope");
    if (d.kind !== "envelope") continue;
    assert.equal(d.envelope.sender, sender);
    const [tree, ihave] = d.envelope.messages;
    assert.ok(tree?.type === "tree" && ihave?.type === "ihave");
    assert.equal(tree.origin, origin);
    assert.equal(tree.entries[0]!.writer, writer);
    assert.equal(ihave.origin, origin);
    assert.deepEqual(ihave.seqs, [i, i + 2]);
  }
});

test("internedAt() finds an id interned before by its bytes, and nothing else", () => {
  const bytes = (s: string, pad = 0) => {
    const b = new Uint8Array(pad + s.length);
    for (let i = 0; i < s.length; i++) b[pad + i] = s.charCodeAt(i);
    return b;
  };
  internId("node-17");
  assert.equal(internedAt(bytes("node-17", 3), 3, 7), "node-17");
  // Another text of the same length in the same slot is not it.
  const random = seededRandom(5);
  let other = "";
  for (let tries = 0; tries < 100_000; tries++) {
    let s = "";
    for (let j = 0; j < 7; j++) s += String.fromCharCode(97 + Math.floor(random() * 26));
    if (s === "node-17") continue;
    internId(s);
    if (internedAt(bytes("node-17"), 0, 7) === undefined) {
      other = s;
      break;
    }
  }
  assert.notEqual(other, "", "some id takes node-17's slot");
  assert.equal(internedAt(bytes(other), 0, other.length), other);
  assert.equal(internedAt(bytes("node-17"), 0, 7), undefined);
  // A prefix or a longer text is not the id.
  assert.equal(internedAt(bytes(other), 0, other.length - 1), undefined);
  // Bytes past ASCII never match, even where a code unit equals the byte.
  internId("\u00e9");
  assert.equal(internId("\u00e9"), "\u00e9");
  assert.equal(internedAt(new Uint8Array([0xe9]), 0, 1), undefined);
});
