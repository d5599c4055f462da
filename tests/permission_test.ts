// How users write permissions: the string and JSON forms, and every way to get one wrong.

import assert from "node:assert/strict";
import {
  formatPermission,
  InvalidPermissionError,
  parsePermission,
  PERMISSION_NAMES,
  type SandboxPermission,
} from "../policy/permission.ts";

const SIMPLE_NAMES = [
  "disk-full-read-access",
  "disk-write-cwd",
  "disk-write-platform-user-temp-folder",
  "disk-write-platform-global-temp-folder",
  "disk-full-write-access",
  "network-full-access",
  "network-unix-sockets",
] as const;

/** Asserts that parsing throws an InvalidPermissionError whose message names the value. */
function assertRejected(value: unknown, names: string, reason?: RegExp): void {
  let caught: unknown;
  try {
    parsePermission(value);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof InvalidPermissionError, `not refused as expected: ${caught}`);
  assert.equal(caught.name, "InvalidPermissionError");
  assert.equal(caught.value, value);
  assert.ok(
    caught.message.includes(names),
    `message ${JSON.stringify(caught.message)} does not name ${names}`,
  );
  // STYLE.md: a capital letter first, no period last.
  assert.match(caught.message, /^[A-Z]/);
  assert.doesNotMatch(caught.message, /\.$/);
  if (reason) assert.match(caught.message, reason);
}

Deno.test("PERMISSION_NAMES lists the seven permissions of the original and five more", () => {
  assert.deepEqual(
    [...PERMISSION_NAMES].sort(),
    [
      ...SIMPLE_NAMES,
      "disk-write-folder",
      "disk-read-folder",
      "network-connect-tcp",
      "network-bind-tcp",
      "network-domain",
    ].sort(),
  );
});

Deno.test("parsePermission() reads disk-read-folder and TCP ports in both forms", async (t) => {
  await t.step("strings", () => {
    assert.deepEqual(parsePermission("disk-read-folder=~/src"), {
      kind: "disk-read-folder",
      folder: "~/src",
    });
    assert.deepEqual(parsePermission("network-connect-tcp=443"), {
      kind: "network-connect-tcp",
      port: 443,
    });
    assert.deepEqual(parsePermission("network-bind-tcp=8080"), {
      kind: "network-bind-tcp",
      port: 8080,
    });
  });
  await t.step("objects", () => {
    assert.deepEqual(parsePermission({ "network-connect-tcp": { port: 22 } }), {
      kind: "network-connect-tcp",
      port: 22,
    });
    assert.deepEqual(parsePermission({ "disk-read-folder": { folder: "/data" } }), {
      kind: "disk-read-folder",
      folder: "/data",
    });
  });
  await t.step("bad ports name the value", () => {
    for (
      const bad of [
        "network-connect-tcp",
        "network-connect-tcp=",
        "network-connect-tcp=0",
        "network-connect-tcp=65536",
        "network-connect-tcp=-1",
        "network-connect-tcp=80.5",
        "network-bind-tcp=http",
        { "network-bind-tcp": { port: "80" } },
        { "network-bind-tcp": { port: 80, host: "x" } },
      ]
    ) {
      assert.throws(
        () => parsePermission(bad),
        (error: unknown) =>
          error instanceof InvalidPermissionError &&
          error.message.includes(JSON.stringify(bad)),
      );
    }
  });
  await t.step("round trip", () => {
    for (const text of ["disk-read-folder=/a", "network-connect-tcp=1", "network-bind-tcp=65535"]) {
      assert.equal(formatPermission(parsePermission(text)), text);
    }
  });
});

Deno.test("parsePermission() reads every simple permission from its name", async (t) => {
  for (const name of SIMPLE_NAMES) {
    await t.step(name, () => {
      assert.deepEqual(parsePermission(name), { kind: name });
    });
  }
});

Deno.test("parsePermission() reads disk-write-folder=PATH", async (t) => {
  const cases: [string, string][] = [
    ["disk-write-folder=/src", "/src"],
    ["disk-write-folder=relative/dir", "relative/dir"],
    ["disk-write-folder=/with space", "/with space"],
    // Only the first "=" separates: the rest belongs to the path.
    ["disk-write-folder=/a=b", "/a=b"],
    ["disk-write-folder==", "="],
    ["disk-write-folder=/x=/y=", "/x=/y="],
  ];
  for (const [text, folder] of cases) {
    await t.step(text, () => {
      assert.deepEqual(parsePermission(text), { kind: "disk-write-folder", folder });
    });
  }
});

Deno.test("parsePermission() reads the JSON object forms", async (t) => {
  await t.step("disk-write-folder with its folder", () => {
    assert.deepEqual(parsePermission({ "disk-write-folder": { folder: "/x" } }), {
      kind: "disk-write-folder",
      folder: "/x",
    });
    assert.deepEqual(parsePermission(JSON.parse('{"disk-write-folder":{"folder":"/a=b"}}')), {
      kind: "disk-write-folder",
      folder: "/a=b",
    });
  });
  for (const name of SIMPLE_NAMES) {
    await t.step(`${name} with an empty object`, () => {
      assert.deepEqual(parsePermission({ [name]: {} }), { kind: name });
      assert.deepEqual(parsePermission(JSON.parse(`{"${name}": {}}`)), { kind: name });
    });
  }
});

Deno.test("parsePermission() rejects unknown names, naming the value", async (t) => {
  const cases: [string, unknown, string][] = [
    ["unknown string", "disk-write-everything", "disk-write-everything"],
    ["unknown string with an argument", "disk-write-anywhere=/x", "disk-write-anywhere"],
    ["empty string", "", '""'],
    ["wrong case", "Disk-Write-Cwd", "Disk-Write-Cwd"],
    ["surrounding space", " disk-write-cwd", " disk-write-cwd"],
    ["unknown object key", { "network-some-access": {} }, "network-some-access"],
    ["object with the string form as key", { "disk-write-folder=/x": {} }, "disk-write-folder=/x"],
  ];
  for (const [name, value, names] of cases) {
    await t.step(name, () => assertRejected(value, names, /unknown permission/));
  }
  await t.step("the message lists the known names", () => {
    assertRejected("nope", "nope", new RegExp(PERMISSION_NAMES.join(", ")));
  });
});

Deno.test("parsePermission() rejects disk-write-folder without a folder", async (t) => {
  const cases: [string, unknown, string][] = [
    ["no =", "disk-write-folder", "disk-write-folder"],
    ["empty after =", "disk-write-folder=", "disk-write-folder="],
    ["empty folder in JSON", { "disk-write-folder": { folder: "" } }, '"folder":""'],
    ["no folder key", { "disk-write-folder": {} }, '{"disk-write-folder":{}}'],
    ["folder not a string", { "disk-write-folder": { folder: 42 } }, '"folder":42'],
    ["folder null", { "disk-write-folder": { folder: null } }, '"folder":null'],
    ["folder given bare", { "disk-write-folder": "/x" }, '"disk-write-folder":"/x"'],
    ["folder in an array", { "disk-write-folder": ["/x"] }, '["/x"]'],
    ["argument null", { "disk-write-folder": null }, '"disk-write-folder":null'],
  ];
  for (const [name, value, names] of cases) {
    await t.step(name, () => assertRejected(value, names, /disk-write-folder/));
  }
});

Deno.test("parsePermission() rejects an extra key beside folder", () => {
  assertRejected(
    { "disk-write-folder": { folder: "/x", recursive: true } },
    '"recursive":true',
    /"folder": "PATH"/,
  );
});

Deno.test("parsePermission() rejects an argument on a simple permission", async (t) => {
  const cases: [string, unknown, string][] = [
    ["string with =", "disk-write-cwd=/x", "disk-write-cwd=/x"],
    ["string with an empty =", "network-full-access=", "network-full-access="],
    ["string with =yes", "disk-full-read-access=yes", "disk-full-read-access=yes"],
    ["object argument", { "disk-write-cwd": { folder: "/x" } }, '"folder":"/x"'],
    ["string argument", { "network-full-access": "yes" }, '"network-full-access":"yes"'],
    ["false argument", { "network-full-access": false }, '"network-full-access":false'],
    ["number argument", { "disk-full-write-access": 1 }, '"disk-full-write-access":1'],
    ["array argument", { "disk-write-cwd": [] }, '"disk-write-cwd":[]'],
  ];
  for (const [name, value, names] of cases) {
    await t.step(name, () => assertRejected(value, names, /takes no argument/));
  }
});

Deno.test("parsePermission() rejects what is neither a string nor a one-key object", async (t) => {
  const cases: [string, unknown, string, RegExp][] = [
    ["number", 42, "42", /a string or a one-key object/],
    ["null", null, "null", /a string or a one-key object/],
    ["undefined", undefined, "undefined", /a string or a one-key object/],
    ["boolean", true, "true", /a string or a one-key object/],
    ["array", ["disk-write-cwd"], '["disk-write-cwd"]', /a string or a one-key object/],
    ["empty object", {}, "{}", /exactly one key/],
    [
      "two keys",
      { "disk-write-cwd": {}, "network-full-access": {} },
      '{"disk-write-cwd":{},"network-full-access":{}}',
      /exactly one key/,
    ],
  ];
  for (const [name, value, names, reason] of cases) {
    await t.step(name, () => assertRejected(value, names, reason));
  }
});

Deno.test("formatPermission() writes what parsePermission() reads back", async (t) => {
  const permissions: SandboxPermission[] = [
    ...SIMPLE_NAMES.map((kind): SandboxPermission => ({ kind })),
    { kind: "disk-write-folder", folder: "/src" },
    { kind: "disk-write-folder", folder: "relative/dir" },
    { kind: "disk-write-folder", folder: "/a=b" },
    { kind: "disk-write-folder", folder: "/with space" },
  ];
  for (const permission of permissions) {
    const text = formatPermission(permission);
    await t.step(text, () => {
      assert.deepEqual(parsePermission(text), permission);
      assert.equal(formatPermission(parsePermission(text)), text);
    });
  }
  assert.equal(
    formatPermission({ kind: "disk-write-folder", folder: "/x" }),
    "disk-write-folder=/x",
  );
  assert.equal(formatPermission({ kind: "network-full-access" }), "network-full-access");
});
