// The capability planner: what root keeps under each policy, and what leaves the bounding set.

import assert from "node:assert/strict";
import {
  CAP_CHOWN,
  CAP_NET_RAW,
  CAP_SETPCAP,
  capabilitiesFromHex,
  capabilityName,
  FULL_NETWORK_CAPABILITIES,
  FULL_WRITE_CAPABILITIES,
  planCapabilities,
} from "../policy/capabilities.ts";

const LAST = 40;
const ALL = Array.from({ length: LAST + 1 }, (_, cap) => cap);
const without = (drop: readonly number[]) => ALL.filter((cap) => !drop.includes(cap));

Deno.test("capabilityName() names capabilities as the header does", () => {
  assert.equal(capabilityName(0), "CAP_CHOWN");
  assert.equal(capabilityName(8), "CAP_SETPCAP");
  assert.equal(capabilityName(21), "CAP_SYS_ADMIN");
  assert.equal(capabilityName(40), "CAP_CHECKPOINT_RESTORE");
  assert.equal(capabilityName(41), "CAP_41");
});

Deno.test("capabilitiesFromHex() reads a /proc/PID/status mask", () => {
  assert.deepEqual(capabilitiesFromHex("0000000000000000"), []);
  assert.deepEqual(capabilitiesFromHex("000001ffffffffff"), ALL);
  assert.deepEqual(capabilitiesFromHex("0000000000002101"), [0, 8, 13]);
  assert.deepEqual(capabilitiesFromHex("8000000000000000"), [63]);
  assert.throws(() => capabilitiesFromHex("xyz"), TypeError);
  assert.throws(() => capabilitiesFromHex(""), TypeError);
});

Deno.test("planCapabilities() keeps nothing for root under a restricted policy", () => {
  const plan = planCapabilities({
    restrictWrites: true,
    restrictNetwork: true,
    uid: 0,
    lastCap: LAST,
    effective: ALL,
  });
  assert.deepEqual(plan.keep, []);
  assert.deepEqual(plan.dropBounding, ALL);
  assert.deepEqual(plan.notes, []);
});

Deno.test("planCapabilities() keeps what full write and full network need, for root only", async (t) => {
  const cases: [string, boolean, boolean, readonly number[]][] = [
    ["full write", false, true, FULL_WRITE_CAPABILITIES],
    ["full network", true, false, FULL_NETWORK_CAPABILITIES],
    ["both", false, false, [...FULL_WRITE_CAPABILITIES, ...FULL_NETWORK_CAPABILITIES]],
  ];
  for (const [name, restrictWrites, restrictNetwork, kept] of cases) {
    await t.step(name, () => {
      const root = planCapabilities({
        restrictWrites,
        restrictNetwork,
        uid: 0,
        lastCap: LAST,
        effective: ALL,
      });
      assert.deepEqual(root.keep, [...kept].sort((a, b) => a - b));
      assert.deepEqual(root.keepNames, root.keep.map(capabilityName));
      assert.deepEqual(root.dropBounding, without(kept));
      // Another uid: the change of uid clears the sets anyway, and nothing is kept.
      const user = planCapabilities({
        restrictWrites,
        restrictNetwork,
        uid: 1000,
        lastCap: LAST,
        effective: ALL,
      });
      assert.deepEqual(user.keep, []);
      assert.deepEqual(user.dropBounding, ALL);
    });
  }
  assert.deepEqual(FULL_WRITE_CAPABILITIES.map(capabilityName), [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
  ]);
  // Raw sockets would read every user's traffic; a low port, take a service's place.
  assert.deepEqual(FULL_NETWORK_CAPABILITIES.map(capabilityName), []);
});

Deno.test("planCapabilities() keeps only what the caller holds", () => {
  const plan = planCapabilities({
    restrictWrites: false,
    restrictNetwork: false,
    uid: 0,
    lastCap: LAST,
    effective: [CAP_SETPCAP, CAP_CHOWN, CAP_NET_RAW],
  });
  assert.deepEqual(plan.keep, [CAP_CHOWN]);
  assert.deepEqual(plan.dropBounding, without([CAP_CHOWN]));
});

Deno.test("planCapabilities() without CAP_SETPCAP leaves the bounding set and says why", () => {
  const plan = planCapabilities({
    restrictWrites: true,
    restrictNetwork: true,
    uid: 0,
    lastCap: LAST,
    effective: without([CAP_SETPCAP]),
  });
  assert.deepEqual(plan.dropBounding, []);
  assert.deepEqual(plan.keep, []);
  assert.equal(plan.notes.length, 1);
  assert.match(plan.notes[0], /CAP_SETPCAP.*no_new_privs/);
});

Deno.test("planCapabilities() drops up to the kernel's last capability", () => {
  const plan = planCapabilities({
    restrictWrites: true,
    restrictNetwork: true,
    uid: 0,
    lastCap: 37,
    effective: ALL,
  });
  assert.deepEqual(plan.dropBounding, ALL.slice(0, 38));
});
