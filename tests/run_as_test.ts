// --run-as USER[:GROUP], resolved against account files given as text: no system file is read.

import assert from "node:assert/strict";
import { parseGroup, parsePasswd, resolveRunAs } from "../policy/run_as.ts";
import { PolicyError } from "../policy/sandbox_policy.ts";

const PASSWD = parsePasswd(`root:x:0:0:root:/root:/bin/bash
# a comment
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
bob:x:1001:100::/home/bob:/bin/sh
+nisuser::::::
broken:x:notanumber:1000::/:/bin/sh

nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`);

const GROUP = parseGroup(`root:x:0:
users:x:100:
alice:x:1000:
docs:x:1005:alice,bob
wheel:x:10:carol,alice
empty:x:1006:
nogroup:x:65534:
`);

Deno.test("parsePasswd() keeps lines with a name and numeric ids, in order", () => {
  assert.deepEqual(PASSWD, [
    { name: "root", uid: 0, gid: 0 },
    { name: "alice", uid: 1000, gid: 1000 },
    { name: "bob", uid: 1001, gid: 100 },
    { name: "nobody", uid: 65534, gid: 65534 },
  ]);
});

Deno.test("parseGroup() reads members, none for an empty list", () => {
  assert.deepEqual(GROUP.find((group) => group.name === "docs"), {
    name: "docs",
    gid: 1005,
    members: ["alice", "bob"],
  });
  assert.deepEqual(GROUP.find((group) => group.name === "empty")?.members, []);
  assert.equal(GROUP.length, 7);
});

Deno.test("resolveRunAs() takes a name's uid, primary gid and every group that lists it", () => {
  assert.deepEqual(resolveRunAs("alice", PASSWD, GROUP), {
    spec: "alice",
    user: "alice",
    uid: 1000,
    gid: 1000,
    groups: [10, 1000, 1005],
  });
  assert.deepEqual(resolveRunAs("bob", PASSWD, GROUP).groups, [100, 1005]);
  assert.deepEqual(resolveRunAs("nobody", PASSWD, GROUP).groups, [65534]);
});

Deno.test("resolveRunAs() takes a group by name or number in place of the primary one", () => {
  const named = resolveRunAs("alice:users", PASSWD, GROUP);
  assert.deepEqual([named.uid, named.gid, named.groups], [1000, 100, [10, 100, 1005]]);
  const numbered = resolveRunAs("bob:4242", PASSWD, GROUP);
  assert.deepEqual([numbered.uid, numbered.gid, numbered.groups], [1001, 4242, [1005, 4242]]);
});

Deno.test("resolveRunAs() takes a numeric uid, with or without an entry", () => {
  const known = resolveRunAs("1000", PASSWD, GROUP);
  assert.deepEqual([known.user, known.uid, known.gid, known.groups], [
    "alice",
    1000,
    1000,
    [10, 1000, 1005],
  ]);
  const unknown = resolveRunAs("4000:4001", PASSWD, GROUP);
  assert.deepEqual([unknown.user, unknown.uid, unknown.gid, unknown.groups], [
    "4000",
    4000,
    4001,
    [4001],
  ]);
  assert.equal(resolveRunAs("0", PASSWD, GROUP).uid, 0);
});

Deno.test("resolveRunAs() refuses what names nobody, with the text in the message", async (t) => {
  const cases: [string, RegExp][] = [
    ["", /expected USER or USER:GROUP/],
    [":users", /expected USER or USER:GROUP/],
    ["alice:", /expected USER or USER:GROUP/],
    ["alice:users:extra", /expected USER or USER:GROUP/],
    ["mallory", /no user mallory in \/etc\/passwd/],
    ["alice:staff", /no group staff in \/etc\/group/],
    ["4000", /uid 4000 has no entry in \/etc\/passwd: give its group/],
    // (uid_t) -1 means "leave unchanged" to setuid: it is nobody's id.
    ["4294967295:1", /uid 4294967295 is out of range/],
    ["1000:4294967295", /gid 4294967295 is out of range/],
    ["99999999999:1", /out of range/],
    // A comment line is not an account.
    ["# a comment", /no user # a comment/],
  ];
  for (const [spec, message] of cases) {
    await t.step(JSON.stringify(spec), () => {
      assert.throws(() => resolveRunAs(spec, PASSWD, GROUP), (error: unknown) => {
        assert.ok(error instanceof PolicyError);
        assert.equal(error.kind, "invalid-run-as");
        assert.equal(error.path, spec);
        assert.match(error.message, /^Invalid --run-as /);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});
