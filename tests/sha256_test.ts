import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256Hex } from "../exec/_sha256.ts";

Deno.test("sha256Hex() matches node:crypto at every padding boundary", () => {
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_000]) {
    const data = new Uint8Array(length).map((_, i) => (i * 31 + length) & 0xff);
    assert.equal(
      sha256Hex(data),
      createHash("sha256").update(data).digest("hex"),
      `length ${length}`,
    );
  }
  assert.equal(
    sha256Hex(new TextEncoder().encode("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});
