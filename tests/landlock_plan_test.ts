// The Landlock planner: what each ABI handles, the rules that grant rights back, and what the
// plan admits it could not enforce. Pure: the ABI and each path's kind are given.

import assert from "node:assert/strict";
import {
  FS_FILE_RIGHTS,
  fsRightNames,
  fsRightsForAbi,
  LANDLOCK_ACCESS_FS_EXECUTE,
  LANDLOCK_ACCESS_FS_IOCTL_DEV,
  LANDLOCK_ACCESS_FS_MAKE_BLOCK,
  LANDLOCK_ACCESS_FS_MAKE_CHAR,
  LANDLOCK_ACCESS_FS_MAKE_DIR,
  LANDLOCK_ACCESS_FS_READ_DIR,
  LANDLOCK_ACCESS_FS_READ_FILE,
  LANDLOCK_ACCESS_FS_REFER,
  LANDLOCK_ACCESS_FS_REMOVE_FILE,
  LANDLOCK_ACCESS_FS_TRUNCATE,
  LANDLOCK_ACCESS_FS_WRITE_FILE,
  LANDLOCK_ACCESS_NET_BIND_TCP,
  LANDLOCK_ACCESS_NET_CONNECT_TCP,
  LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET,
  LANDLOCK_SCOPE_SIGNAL,
  type LandlockInput,
  type LandlockPlan,
  maskRuleAccess,
  planLandlock,
} from "../policy/landlock.ts";

let inode = 10;
/** A path with an identity of its own, as the planner gets it. */
function at(path: string, isDirectory: boolean) {
  return { path, isDirectory, dev: 1, ino: inode++ };
}

const ROOT = at("/", true);
const NULL_DEVICE = { target: at("/dev/null", false), access: 0x1fff | 0x6000 | 0x8000 };
const TTY = { target: at("/dev/tty", false), access: 0x2 | 0x4 | 0x8000 };
const WORK = at("/work", true);
const EXECUTE = LANDLOCK_ACCESS_FS_EXECUTE;
const READ_FILE = LANDLOCK_ACCESS_FS_READ_FILE;
const READ_DIR = LANDLOCK_ACCESS_FS_READ_DIR;
const WRITE_FILE = LANDLOCK_ACCESS_FS_WRITE_FILE;
const TRUNCATE = LANDLOCK_ACCESS_FS_TRUNCATE;
const IOCTL_DEV = LANDLOCK_ACCESS_FS_IOCTL_DEV;
const NO_DEVICE_NODES = ~(LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK);

/** The filesystem rights each ABI handles, from the kernel's documentation. */
const FS_MASK: Record<number, number> = {
  0: 0,
  1: 0x1fff,
  2: 0x3fff,
  3: 0x7fff,
  4: 0x7fff,
  5: 0xffff,
  6: 0xffff,
  7: 0xffff,
  8: 0xffff,
};

function plan(overrides: Partial<LandlockInput> = {}): LandlockPlan {
  return planLandlock({
    abi: 7,
    restrictWrites: true,
    restrictNetwork: true,
    root: ROOT,
    writableRoots: [WORK],
    devices: [NULL_DEVICE, TTY],
    ...overrides,
  });
}

function ruleFor(p: LandlockPlan, path: string): number | undefined {
  const rules = p.rules.filter((rule) => rule.path === path);
  assert.ok(rules.length <= 1, `${rules.length} rules for ${path}`);
  return rules[0]?.access;
}

function hex(n: number | undefined): string {
  return n === undefined ? "none" : `0x${n.toString(16)}`;
}

Deno.test("fsRightsForAbi() gives each ABI's filesystem rights, newer ABIs as the newest", () => {
  for (const [abi, mask] of Object.entries(FS_MASK)) {
    assert.equal(hex(fsRightsForAbi(Number(abi))), hex(mask), `ABI ${abi}`);
  }
  assert.equal(fsRightsForAbi(100), 0xffff);
  assert.equal(fsRightsForAbi(-1), 0);
});

Deno.test("fsRightNames() names rights lowest bit first", () => {
  assert.deepEqual(fsRightNames(0), []);
  assert.deepEqual(fsRightNames(EXECUTE | READ_DIR | IOCTL_DEV), [
    "execute",
    "read_dir",
    "ioctl_dev",
  ]);
  assert.equal(fsRightNames(0xffff).length, 16);
});

Deno.test("planLandlock() handles on each ABI what that ABI can restrict", async (t) => {
  for (let abi = 0; abi <= 8; abi++) {
    await t.step(`ABI ${abi}`, () => {
      const p = plan({ abi });
      assert.equal(p.abi, Math.min(abi, 7), "an ABI newer than known is planned as the newest");
      assert.equal(hex(p.handledAccessFs), hex(FS_MASK[abi]));
      assert.equal(hex(p.handledAccessFs), hex(fsRightsForAbi(abi)));
      assert.equal(
        p.handledAccessNet,
        abi >= 4 ? LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP : 0,
      );
      assert.equal(
        p.scoped,
        abi >= 6 ? LANDLOCK_SCOPE_SIGNAL | LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET : 0,
      );
      assert.equal(p.apply, abi > 0);
      assert.equal(p.enforcement, abi === 0 ? "none" : abi < 6 ? "partial" : "full");
    });
  }
});

Deno.test("planLandlock() says what each ABI leaves unrestricted", async (t) => {
  const cases: [number, RegExp[]][] = [
    [0, [/Landlock is not available/]],
    [1, [/refer, truncate, ioctl_dev/, /TCP bind\/connect/, /signals and abstract UNIX/]],
    [2, [/rights truncate, ioctl_dev /, /TCP bind\/connect/, /signals and abstract UNIX/]],
    [3, [/rights ioctl_dev /, /TCP bind\/connect/, /signals and abstract UNIX/]],
    [4, [/rights ioctl_dev /, /signals and abstract UNIX/]],
    [5, [/signals and abstract UNIX/]],
    [6, []],
    [7, []],
    [8, []],
  ];
  for (const [abi, expected] of cases) {
    await t.step(`ABI ${abi}`, () => {
      const { dropped } = plan({ abi });
      assert.equal(dropped.length, expected.length, dropped.join("\n"));
      expected.forEach((pattern, i) => assert.match(dropped[i], pattern));
      if (abi >= 1 && abi < 6) assert.ok(dropped.every((line) => line.includes(`ABI ${abi}`)));
    });
  }
});

Deno.test("planLandlock() drops truncate below ABI 3 and ioctl_dev below ABI 5", () => {
  for (let abi = 1; abi <= 7; abi++) {
    const p = plan({ abi });
    assert.equal((p.handledAccessFs & TRUNCATE) !== 0, abi >= 3, `truncate on ABI ${abi}`);
    assert.equal((p.handledAccessFs & IOCTL_DEV) !== 0, abi >= 5, `ioctl_dev on ABI ${abi}`);
    assert.equal(
      (p.handledAccessFs & LANDLOCK_ACCESS_FS_REFER) !== 0,
      abi >= 2,
      `refer on ABI ${abi}`,
    );
  }
});

Deno.test("planLandlock() scopes only signals when the network is allowed", async (t) => {
  for (let abi = 0; abi <= 8; abi++) {
    await t.step(`ABI ${abi}`, () => {
      const p = plan({ abi, restrictNetwork: false });
      assert.equal(p.scoped, abi >= 6 ? LANDLOCK_SCOPE_SIGNAL : 0);
      assert.equal(p.handledAccessNet, 0);
      assert.equal(hex(p.handledAccessFs), hex(FS_MASK[abi]));
      if (abi >= 1 && abi < 6) {
        const scoping = p.dropped.filter((line) => line.includes("scoped"));
        assert.equal(scoping.length, 1);
        assert.match(scoping[0], /^signals are not scoped/);
      }
      assert.ok(p.dropped.every((line) => !line.includes("TCP")), p.dropped.join("\n"));
    });
  }
});

Deno.test("planLandlock() grants / execute, read_file and read_dir only", async (t) => {
  for (let abi = 1; abi <= 8; abi++) {
    await t.step(`ABI ${abi}`, () => {
      const p = plan({ abi });
      assert.equal(hex(ruleFor(p, "/")), hex(EXECUTE | READ_FILE | READ_DIR));
      assert.deepEqual(p.rules[0], {
        path: "/",
        directory: true,
        optional: true,
        access: EXECUTE | READ_FILE | READ_DIR,
        rights: ["execute", "read_file", "read_dir"],
        dev: ROOT.dev,
        ino: ROOT.ino,
      });
    });
  }
});

Deno.test("planLandlock() grants /dev/null its file rights only", async (t) => {
  for (let abi = 1; abi <= 8; abi++) {
    await t.step(`ABI ${abi}`, () => {
      const p = plan({ abi });
      assert.equal(hex(ruleFor(p, "/dev/null")), hex(FS_FILE_RIGHTS & FS_MASK[abi]));
    });
  }
  await t.step("absent /dev/null gets no rule", () => {
    const p = plan({ devices: [TTY] });
    assert.equal(ruleFor(p, "/dev/null"), undefined);
  });
});

Deno.test("planLandlock() grants /dev/tty read, write and device ioctls from ABI 5", async (t) => {
  for (let abi = 1; abi <= 8; abi++) {
    await t.step(`ABI ${abi}`, () => {
      const p = plan({ abi });
      const expected = READ_FILE | WRITE_FILE | (abi >= 5 ? IOCTL_DEV : 0);
      assert.equal(hex(ruleFor(p, "/dev/tty")), hex(expected));
    });
  }
  await t.step("absent /dev/tty gets no rule", () => {
    const p = plan({ devices: [NULL_DEVICE] });
    assert.equal(ruleFor(p, "/dev/tty"), undefined);
    assert.deepEqual(p.rules.map((rule) => rule.path), ["/", "/dev/null", "/work"]);
  });
});

Deno.test("planLandlock() grants writable roots everything but making device nodes", async (t) => {
  for (let abi = 1; abi <= 8; abi++) {
    await t.step(`ABI ${abi}`, () => {
      const p = plan({
        abi,
        writableRoots: [WORK, at("/tmp", true)],
      });
      const expected = FS_MASK[abi] & NO_DEVICE_NODES;
      assert.equal(hex(ruleFor(p, "/work")), hex(expected));
      assert.equal(hex(ruleFor(p, "/tmp")), hex(expected));
      assert.equal(ruleFor(p, "/work")! & LANDLOCK_ACCESS_FS_MAKE_CHAR, 0);
      assert.equal(ruleFor(p, "/work")! & LANDLOCK_ACCESS_FS_MAKE_BLOCK, 0);
      assert.deepEqual(p.rules.map((rule) => rule.path), [
        "/",
        "/dev/null",
        "/dev/tty",
        "/work",
        "/tmp",
      ]);
      for (const rule of p.rules) assert.deepEqual(rule.rights, fsRightNames(rule.access));
    });
  }
});

Deno.test("planLandlock() grants a writable root that is a file only file rights", async (t) => {
  for (let abi = 1; abi <= 8; abi++) {
    await t.step(`ABI ${abi}`, () => {
      const p = plan({ abi, writableRoots: [at("/work/notes.txt", false)] });
      assert.equal(hex(ruleFor(p, "/work/notes.txt")), hex(FS_FILE_RIGHTS & FS_MASK[abi]));
    });
  }
});

Deno.test("planLandlock() with a read-only policy adds no writable rule", () => {
  const p = plan({ writableRoots: [] });
  assert.deepEqual(p.rules.map((rule) => rule.path), ["/", "/dev/null", "/dev/tty"]);
  assert.equal(p.enforcement, "full");
});

Deno.test("planLandlock() with full write handles no filesystem right and adds no rule", async (t) => {
  for (let abi = 0; abi <= 8; abi++) {
    await t.step(`ABI ${abi}`, () => {
      const p = plan({ abi, restrictWrites: false, writableRoots: [] });
      assert.equal(p.handledAccessFs, 0);
      assert.deepEqual(p.rules, []);
      assert.equal(p.handledAccessNet, abi >= 4 ? 3 : 0);
      assert.equal(p.apply, abi >= 4);
      assert.notEqual(p.enforcement, "none", "seccomp still restricts the network");
      assert.ok(p.dropped.every((line) => !line.includes("filesystem")), p.dropped.join("\n"));
    });
  }
});

Deno.test("planLandlock() with full write and full network applies nothing", async (t) => {
  for (let abi = 0; abi <= 8; abi++) {
    await t.step(`ABI ${abi}`, () => {
      const p = plan({ abi, restrictWrites: false, restrictNetwork: false, writableRoots: [] });
      assert.equal(p.apply, false);
      assert.equal(p.handledAccessFs, 0);
      assert.equal(p.handledAccessNet, 0);
      assert.equal(p.scoped, 0);
      assert.deepEqual(p.rules, []);
      assert.deepEqual(p.dropped, []);
      assert.equal(p.enforcement, "full");
    });
  }
});

Deno.test("planLandlock() refuses to run restricted writes without Landlock", () => {
  const p = plan({ abi: 0 });
  assert.equal(p.enforcement, "none");
  assert.equal(p.apply, false);
  assert.deepEqual(p.rules, []);
  assert.equal(p.handledAccessFs, 0);
  assert.equal(p.handledAccessNet, 0);
  assert.equal(p.scoped, 0);
});

Deno.test("maskRuleAccess() keeps only handled rights, and only file rights on a file", async (t) => {
  const ALL = 0xffff;
  await t.step("a directory keeps every handled right", () => {
    assert.equal(hex(maskRuleAccess(ALL, ALL, true)), hex(ALL));
    assert.equal(hex(maskRuleAccess(ALL, 0x1fff, true)), hex(0x1fff));
    assert.equal(
      hex(maskRuleAccess(READ_DIR | LANDLOCK_ACCESS_FS_MAKE_DIR, ALL, true)),
      hex(READ_DIR | LANDLOCK_ACCESS_FS_MAKE_DIR),
    );
  });
  await t.step("a file keeps execute, write_file, read_file, truncate and ioctl_dev", () => {
    assert.equal(hex(maskRuleAccess(ALL, ALL, false)), hex(FS_FILE_RIGHTS));
    assert.deepEqual(fsRightNames(maskRuleAccess(ALL, ALL, false)), [
      "execute",
      "write_file",
      "read_file",
      "truncate",
      "ioctl_dev",
    ]);
    assert.equal(
      maskRuleAccess(
        READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_REFER,
        ALL,
        false,
      ),
      0,
    );
  });
  await t.step("a file on an old ABI keeps only what is handled", () => {
    assert.equal(hex(maskRuleAccess(ALL, 0x1fff, false)), hex(EXECUTE | WRITE_FILE | READ_FILE));
    assert.equal(hex(maskRuleAccess(ALL, 0x7fff, false)), hex(FS_FILE_RIGHTS & ~IOCTL_DEV));
  });
  await t.step("nothing handled, nothing granted", () => {
    assert.equal(maskRuleAccess(ALL, 0, true), 0);
    assert.equal(maskRuleAccess(0, ALL, true), 0);
  });
  await t.step("bits beyond the known rights are never passed on", () => {
    assert.equal(maskRuleAccess(0x1ffff, 0x1ffff, true), ALL);
  });
});

Deno.test("planLandlock() with reads limited grants reading only where told, and listing on the way", async (t) => {
  for (let abi = 1; abi <= 7; abi++) {
    await t.step(`ABI ${abi}`, () => {
      const usr = at("/usr", true);
      const p = plan({ abi, restrictReads: true, readableRoots: [usr], listableFolders: [ROOT] });
      assert.equal(hex(ruleFor(p, "/")), hex(READ_DIR), "/ is listed, nothing read through it");
      assert.equal(hex(ruleFor(p, "/usr")), hex(EXECUTE | READ_FILE | READ_DIR));
      const rule = p.rules.find((candidate) => candidate.path === "/usr")!;
      assert.deepEqual([rule.dev, rule.ino], [usr.dev, usr.ino], "the rule names the planned file");
    });
  }
  await t.step("full write: / gets everything but reading", () => {
    const p = plan({ restrictWrites: false, writableRoots: [], restrictReads: true });
    const READ = READ_FILE | READ_DIR;
    assert.equal(hex(ruleFor(p, "/")), hex(0xffff & ~READ));
  });
});
