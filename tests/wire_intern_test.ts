import { test } from "node:test";
import assert from "node:assert/strict";
import { internId } from "../src/wire/_entry.ts";
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
