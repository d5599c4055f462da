// The policy model and its writable roots, against fake hosts: no real filesystem is touched.

import assert from "node:assert/strict";
import { isAbsolute, normalize } from "node:path";
import { InvalidPermissionError, type SandboxPermission } from "../policy/permission.ts";
import { type PathHost, PolicyError, SandboxPolicy } from "../policy/sandbox_policy.ts";

interface FakeFs {
  /** Directories that exist (their parents are added). */
  dirs?: readonly string[];
  /** Symlinks: absolute path → target (absolute, or relative to the link's folder). */
  links?: Readonly<Record<string, string>>;
  /** `$TMPDIR`. */
  tmpdir?: string;
}

/** A host over an imaginary filesystem; `calls` records every `realPath` lookup. */
function fakeHost(fs: FakeFs): PathHost & { calls: string[] } {
  const dirs = new Set<string>(["/"]);
  for (const dir of fs.dirs ?? []) {
    for (let path = normalize(dir); path !== "/"; path = parent(path)) dirs.add(path);
  }
  const links = new Map(Object.entries(fs.links ?? {}));
  const calls: string[] = [];
  const resolveLinks = (path: string, depth: number): string | undefined => {
    if (depth > 40) return undefined; // ELOOP
    let real = "/";
    const parts = normalize(path).split("/").filter((part) => part !== "");
    for (let i = 0; i < parts.length; i++) {
      const next = real === "/" ? `/${parts[i]}` : `${real}/${parts[i]}`;
      const target = links.get(next);
      if (target !== undefined) {
        const absolute = isAbsolute(target) ? target : `${real}/${target}`;
        const rest = parts.slice(i + 1).join("/");
        return resolveLinks(rest ? `${absolute}/${rest}` : absolute, depth + 1);
      }
      if (parts[i] === "..") real = parent(real);
      else real = next;
    }
    return dirs.has(real) ? real : undefined;
  };
  return {
    calls,
    tmpdir: () => fs.tmpdir,
    realPath(path: string): string | undefined {
      assert.ok(isAbsolute(path), `realPath() given a relative path: ${path}`);
      calls.push(path);
      return resolveLinks(path, 0);
    },
  };
}

function parent(path: string): string {
  const at = path.lastIndexOf("/");
  return at <= 0 ? "/" : path.slice(0, at);
}

/** Asserts a PolicyError of a kind, for a path as given, whose message names the path. */
function assertPolicyError(run: () => unknown, kind: string, path: string): PolicyError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof PolicyError, `expected a PolicyError, got ${caught}`);
  assert.equal(caught.name, "PolicyError");
  assert.equal(caught.kind, kind);
  assert.equal(caught.path, path);
  assert.ok(caught.message.includes(path), caught.message);
  assert.match(caught.message, /^[A-Z$]/);
  assert.doesNotMatch(caught.message, /\.$/);
  return caught;
}

const WORLD: FakeFs = {
  dirs: ["/work/project/sub", "/tmp", "/home/me/tmp", "/data", "/other"],
  tmpdir: "/home/me/tmp",
};

Deno.test("SandboxPolicy answers hasFull*() from its permissions only", async (t) => {
  const cases: [string, string[], [boolean, boolean, boolean]][] = [
    ["no permission", [], [false, false, false]],
    ["disk-full-read-access", ["disk-full-read-access"], [true, false, false]],
    ["disk-full-write-access", ["disk-full-write-access"], [false, true, false]],
    ["network-full-access", ["network-full-access"], [false, false, true]],
    ["disk-write-cwd", ["disk-write-cwd"], [false, false, false]],
    ["disk-write-folder", ["disk-write-folder=/x"], [false, false, false]],
    [
      "all three",
      ["network-full-access", "disk-full-write-access", "disk-full-read-access"],
      [true, true, true],
    ],
  ];
  for (const [name, permissions, [read, write, network]] of cases) {
    await t.step(name, () => {
      const policy = new SandboxPolicy(permissions);
      assert.equal(policy.hasFullDiskReadAccess(), read, "read");
      assert.equal(policy.hasFullDiskWriteAccess(), write, "write");
      assert.equal(policy.hasFullNetworkAccess(), network, "network");
    });
  }
});

Deno.test("SandboxPolicy presets hold exactly their permissions", async (t) => {
  await t.step("readOnly()", () => {
    const policy = SandboxPolicy.readOnly();
    assert.deepEqual(policy.permissions, [{ kind: "disk-full-read-access" }]);
    assert.equal(policy.hasFullDiskWriteAccess(), false);
    assert.equal(policy.hasFullNetworkAccess(), false);
  });
  await t.step("readOnlyWithWritableRoots()", () => {
    assert.deepEqual(SandboxPolicy.readOnlyWithWritableRoots(["/a", "rel/b"]).permissions, [
      { kind: "disk-full-read-access" },
      { kind: "disk-write-folder", folder: "/a" },
      { kind: "disk-write-folder", folder: "rel/b" },
    ]);
    assert.deepEqual(SandboxPolicy.readOnlyWithWritableRoots([]).permissions, [
      { kind: "disk-full-read-access" },
    ]);
    assert.deepEqual(SandboxPolicy.readOnlyWithWritableRoots(["/a", "/a"]).permissions, [
      { kind: "disk-full-read-access" },
      { kind: "disk-write-folder", folder: "/a" },
    ]);
  });
  await t.step("readOnlyWithWritableRoots() refuses an empty folder", () => {
    assert.throws(() => SandboxPolicy.readOnlyWithWritableRoots([""]), InvalidPermissionError);
  });
  await t.step("fullAuto()", () => {
    const policy = SandboxPolicy.fullAuto();
    assert.deepEqual(policy.permissions, [
      { kind: "disk-full-read-access" },
      { kind: "disk-write-cwd" },
      { kind: "disk-write-platform-user-temp-folder" },
      { kind: "disk-write-platform-global-temp-folder" },
    ]);
    assert.equal(policy.hasFullDiskWriteAccess(), false);
    assert.equal(policy.hasFullNetworkAccess(), false);
  });
});

Deno.test("SandboxPolicy implies no permission it was not given", async (t) => {
  await t.step("full write does not grant read or network", () => {
    const policy = new SandboxPolicy(["disk-full-write-access"]);
    assert.deepEqual(policy.permissions, [{ kind: "disk-full-write-access" }]);
    assert.equal(policy.hasFullDiskReadAccess(), false);
    assert.equal(policy.hasFullNetworkAccess(), false);
  });
  await t.step("network does not grant read", () => {
    const policy = new SandboxPolicy(["network-full-access"]);
    assert.deepEqual(policy.permissions, [{ kind: "network-full-access" }]);
    assert.equal(policy.hasFullDiskReadAccess(), false);
  });
  await t.step("an empty policy has no permissions and no roots", () => {
    const policy = new SandboxPolicy();
    assert.deepEqual(policy.permissions, []);
    assert.deepEqual(policy.getWritableRootsWithCwd("/work/project", fakeHost(WORLD)), []);
  });
});

Deno.test("SandboxPolicy merges duplicates given in any form, keeping the first order", () => {
  const policy = new SandboxPolicy([
    "disk-write-cwd",
    { "disk-write-folder": { folder: "/x" } },
    { kind: "disk-write-cwd" },
    "disk-write-folder=/x",
    { kind: "disk-write-folder", folder: "/x" },
    { "disk-write-cwd": {} },
    "disk-write-folder=/y",
  ]);
  assert.deepEqual(policy.permissions, [
    { kind: "disk-write-cwd" },
    { kind: "disk-write-folder", folder: "/x" },
    { kind: "disk-write-folder", folder: "/y" },
  ]);
});

Deno.test("SandboxPolicy freezes its permissions", () => {
  const given: SandboxPermission = { kind: "disk-write-folder", folder: "/x" };
  const policy = new SandboxPolicy([given]);
  assert.ok(Object.isFrozen(policy.permissions));
  assert.ok(policy.permissions.every((permission) => Object.isFrozen(permission)));
  // A copy: the caller's object is not frozen or shared.
  assert.notEqual(policy.permissions[0], given);
  assert.equal(Object.isFrozen(given), false);
});

Deno.test("SandboxPolicy checks already-parsed permissions as untrusted input", async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ["an unknown kind", { kind: "bogus" }, /bogus/],
    ["disk-write-folder without folder", { kind: "disk-write-folder" }, /disk-write-folder/],
    ["disk-write-folder with an empty folder", { kind: "disk-write-folder", folder: "" }, /""/],
    ["disk-write-folder with a number", { kind: "disk-write-folder", folder: 7 }, /7/],
    ["an unknown string", "disk-write-all", /disk-write-all/],
    ["a malformed object", { "disk-write-cwd": { folder: "/x" } }, /disk-write-cwd/],
  ];
  for (const [name, value, names] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => new SandboxPolicy([value as SandboxPermission]),
        (error: unknown) => error instanceof InvalidPermissionError && names.test(error.message),
      );
    });
  }
});

Deno.test("getWritableRootsWithCwd() adds cwd only with disk-write-cwd", async (t) => {
  const host = fakeHost(WORLD);
  await t.step("with it", () => {
    assert.deepEqual(
      new SandboxPolicy(["disk-write-cwd"]).getWritableRootsWithCwd("/work/project", host),
      ["/work/project"],
    );
  });
  await t.step("without it", () => {
    assert.deepEqual(SandboxPolicy.readOnly().getWritableRootsWithCwd("/work/project", host), []);
    assert.deepEqual(
      SandboxPolicy.readOnlyWithWritableRoots(["/data"]).getWritableRootsWithCwd(
        "/work/project",
        host,
      ),
      ["/data"],
    );
  });
  await t.step("a cwd of / is fine when it is not writable", () => {
    assert.deepEqual(
      SandboxPolicy.readOnlyWithWritableRoots(["/data"]).getWritableRootsWithCwd("/", host),
      ["/data"],
    );
  });
});

Deno.test("getWritableRootsWithCwd() adds $TMPDIR and /tmp only when asked", async (t) => {
  const host = fakeHost(WORLD);
  const roots = (permissions: string[]) =>
    new SandboxPolicy(permissions).getWritableRootsWithCwd("/work/project", host);
  await t.step("neither", () => {
    assert.deepEqual(roots(["disk-full-read-access", "network-full-access"]), []);
  });
  await t.step("$TMPDIR", () => {
    assert.deepEqual(roots(["disk-write-platform-user-temp-folder"]), ["/home/me/tmp"]);
  });
  await t.step("/tmp", () => {
    assert.deepEqual(roots(["disk-write-platform-global-temp-folder"]), ["/tmp"]);
  });
  await t.step("fullAuto(), in the order of its permissions", () => {
    assert.deepEqual(
      SandboxPolicy.fullAuto().getWritableRootsWithCwd("/work/project", host),
      ["/work/project", "/home/me/tmp", "/tmp"],
    );
  });
});

Deno.test("getWritableRootsWithCwd() skips temporary folders that do not exist, quietly", async (t) => {
  await t.step("$TMPDIR unset", () => {
    const host = fakeHost({ ...WORLD, tmpdir: undefined });
    assert.deepEqual(SandboxPolicy.fullAuto().getWritableRootsWithCwd("/work/project", host), [
      "/work/project",
      "/tmp",
    ]);
  });
  await t.step("$TMPDIR empty", () => {
    const host = fakeHost({ ...WORLD, tmpdir: "" });
    assert.deepEqual(SandboxPolicy.fullAuto().getWritableRootsWithCwd("/work/project", host), [
      "/work/project",
      "/tmp",
    ]);
  });
  await t.step("$TMPDIR missing", () => {
    const host = fakeHost({ ...WORLD, tmpdir: "/gone/tmp" });
    assert.deepEqual(SandboxPolicy.fullAuto().getWritableRootsWithCwd("/work/project", host), [
      "/work/project",
      "/tmp",
    ]);
  });
  await t.step("/tmp missing", () => {
    const host = fakeHost({ dirs: ["/work/project"], tmpdir: "/gone" });
    assert.deepEqual(SandboxPolicy.fullAuto().getWritableRootsWithCwd("/work/project", host), [
      "/work/project",
    ]);
  });
});

Deno.test("getWritableRootsWithCwd() refuses a missing cwd or folder", async (t) => {
  const host = fakeHost(WORLD);
  await t.step("cwd", () => {
    const error = assertPolicyError(
      () => SandboxPolicy.fullAuto().getWritableRootsWithCwd("/work/gone", host),
      "missing-folder",
      "/work/gone",
    );
    assert.match(error.message, /^The working folder does not exist/);
  });
  await t.step("absolute folder", () => {
    assertPolicyError(
      () => new SandboxPolicy(["disk-write-folder=/nope"]).getWritableRootsWithCwd("/", host),
      "missing-folder",
      "/nope",
    );
  });
  await t.step("relative folder, reported as given", () => {
    assertPolicyError(
      () =>
        new SandboxPolicy(["disk-write-folder=nope/deeper"]).getWritableRootsWithCwd(
          "/work/project",
          host,
        ),
      "missing-folder",
      "nope/deeper",
    );
  });
  await t.step("a dangling symlink", () => {
    const dangling = fakeHost({ ...WORLD, links: { "/data/link": "/gone" } });
    assertPolicyError(
      () =>
        new SandboxPolicy(["disk-write-folder=/data/link"]).getWritableRootsWithCwd(
          "/",
          dangling,
        ),
      "missing-folder",
      "/data/link",
    );
  });
});

Deno.test("getWritableRootsWithCwd() refuses a root that resolves to /", async (t) => {
  const cases: [string, string[], string, FakeFs, string][] = [
    ["cwd /", ["disk-write-cwd"], "/", WORLD, "/"],
    [
      "$TMPDIR a symlink to /",
      ["disk-write-platform-user-temp-folder"],
      "/work/project",
      { ...WORLD, tmpdir: "/home/me/root", links: { "/home/me/root": "/" } },
      "/home/me/root",
    ],
    ["folder /", ["disk-write-folder=/"], "/work/project", WORLD, "/"],
    ["folder /data/..", ["disk-write-folder=/data/.."], "/work/project", WORLD, "/data/.."],
    ["relative folder ../..", ["disk-write-folder=../.."], "/work/project", WORLD, "../.."],
    [
      "folder a symlink to /",
      ["disk-write-folder=/data/up"],
      "/work/project",
      { ...WORLD, links: { "/data/up": ".." } },
      "/data/up",
    ],
    [
      "cwd a symlink to /",
      ["disk-write-cwd"],
      "/work/root",
      { ...WORLD, links: { "/work/root": "/" } },
      "/work/root",
    ],
  ];
  for (const [name, permissions, cwd, fs, path] of cases) {
    await t.step(name, () => {
      const error = assertPolicyError(
        () => new SandboxPolicy(permissions).getWritableRootsWithCwd(cwd, fakeHost(fs)),
        "filesystem-root",
        path,
      );
      assert.match(error.message, /disk-full-write-access/);
    });
  }
});

Deno.test("getWritableRootsWithCwd() refuses /tmp when it is a symlink to /", () => {
  const host = fakeHost({ dirs: ["/work/project"], links: { "/tmp": "/" } });
  let caught: unknown;
  try {
    SandboxPolicy.fullAuto().getWritableRootsWithCwd("/work/project", host);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof PolicyError, `expected a PolicyError, got ${caught}`);
  assert.equal(caught.kind, "filesystem-root");
  assert.equal(caught.path, "/tmp");
  assert.match(caught.message, /disk-full-write-access/);
});

Deno.test({
  name: "getWritableRootsWithCwd() names /tmp once in a sentence when it resolves to /",
  fn() {
    const host = fakeHost({ dirs: ["/work/project"], links: { "/tmp": "/" } });
    const policy = new SandboxPolicy(["disk-write-platform-global-temp-folder"]);
    const error = assertPolicyError(
      () => policy.getWritableRootsWithCwd("/work/project", host),
      "filesystem-root",
      "/tmp",
    );
    assert.doesNotMatch(error.message, /\/tmp \/tmp/);
  },
});

Deno.test("getWritableRootsWithCwd() canonicalises every root through host.realPath()", () => {
  const host = fakeHost({
    dirs: ["/real/project", "/real/tmp", "/real/data", "/tmp"],
    links: { "/work": "/real", "/home/me/tmp": "/real/tmp", "/data": "real/data" },
    tmpdir: "/home/me/tmp",
  });
  const policy = new SandboxPolicy([
    "disk-write-cwd",
    "disk-write-platform-user-temp-folder",
    "disk-write-folder=/data",
    "disk-write-folder=/work/project/../data/",
  ]);
  assert.deepEqual(policy.getWritableRootsWithCwd("/work/project", host), [
    "/real/project",
    "/real/tmp",
    "/real/data",
  ]);
  assert.deepEqual(host.calls, [
    "/work/project",
    "/home/me/tmp",
    "/data",
    "/work/project/../data/",
  ]);
});

Deno.test("getWritableRootsWithCwd() resolves a relative folder against cwd", async (t) => {
  const host = fakeHost(WORLD);
  const cases: [string, string[]][] = [
    ["sub", ["/work/project/sub"]],
    ["./sub/", ["/work/project/sub"]],
    ["../../other", ["/other"]],
    [".", ["/work/project"]],
  ];
  for (const [folder, expected] of cases) {
    await t.step(folder, () => {
      const policy = new SandboxPolicy([`disk-write-folder=${folder}`]);
      assert.deepEqual(policy.getWritableRootsWithCwd("/work/project", host), expected);
    });
  }
  await t.step("not against the process's own cwd", () => {
    const fresh = fakeHost(WORLD);
    new SandboxPolicy(["disk-write-folder=sub"]).getWritableRootsWithCwd("/work/project", fresh);
    assert.deepEqual(fresh.calls, ["/work/project/sub"]);
  });
});

Deno.test("getWritableRootsWithCwd() returns each root once", async (t) => {
  await t.step("cwd, $TMPDIR and /tmp the same folder through symlinks", () => {
    const host = fakeHost({
      dirs: ["/var/scratch"],
      links: { "/tmp": "/var/scratch", "/home/me/tmp": "/tmp", "/work": "/var/scratch" },
      tmpdir: "/home/me/tmp",
    });
    assert.deepEqual(SandboxPolicy.fullAuto().getWritableRootsWithCwd("/work", host), [
      "/var/scratch",
    ]);
  });
  await t.step("a folder named twice in different spellings", () => {
    const policy = new SandboxPolicy([
      "disk-write-cwd",
      "disk-write-folder=.",
      "disk-write-folder=/work/project/",
      "disk-write-folder=../project",
    ]);
    assert.deepEqual(policy.getWritableRootsWithCwd("/work/project", fakeHost(WORLD)), [
      "/work/project",
    ]);
  });
  await t.step("$TMPDIR set to /tmp", () => {
    const host = fakeHost({ ...WORLD, tmpdir: "/tmp" });
    assert.deepEqual(SandboxPolicy.fullAuto().getWritableRootsWithCwd("/work/project", host), [
      "/work/project",
      "/tmp",
    ]);
  });
});

Deno.test({
  name: "getWritableRootsWithCwd() resolves a relative cwd once",
  fn() {
    const process = Deno.cwd();
    const host = fakeHost({ dirs: [`${process}/work/sub`] });
    const policy = new SandboxPolicy(["disk-write-cwd", "disk-write-folder=sub"]);
    assert.deepEqual(policy.getWritableRootsWithCwd("work", host), [
      `${process}/work`,
      `${process}/work/sub`,
    ]);
  },
});
