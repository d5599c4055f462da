// Red team, privileges: what root could still do with what Landlock does not restrict (file
// metadata, capabilities), and regaining root through a setuid program. Every file touched is
// in a temporary folder this test made, owned by root.

import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { type Output, run, runCli, tempDir, which } from "../_helpers.ts";
import { PolicyError, SandboxPolicy } from "../../policy/sandbox_policy.ts";
import { planSandbox } from "../../policy/plan.ts";
import { probeKernel } from "../../exec/kernel.ts";
import { FULL_NETWORK_CAPABILITIES, FULL_WRITE_CAPABILITIES } from "../../policy/capabilities.ts";
import {
  assertLayers,
  assertWorked,
  describeLayers,
  ENV,
  firstReason,
  layeredPlan,
  type Layers,
  NO_GCC,
  nobody,
  NOT_ROOT,
  probeCommand,
  runPlan,
  runProbe,
  threatTest,
} from "./_redteam.ts";

const POLICY = new SandboxPolicy([]);

/**
 * Runs a case with a root-owned file (mode 644, content `keep`) outside every writable root, in a
 * folder anyone may enter (so that `nobody` reaches the file, and is refused by its owner).
 */
async function withRootFile(fn: (file: string) => Promise<void>): Promise<void> {
  const dir = tempDir();
  Deno.chmodSync(dir, 0o755);
  const file = `${dir}/file`;
  Deno.writeTextFileSync(file, "keep\n", { mode: 0o644 });
  Deno.chmodSync(file, 0o644);
  try {
    await fn(file);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const CAP_LINES = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"];

function capabilityLines(out: Output): Record<string, bigint> {
  assert.equal(out.code, 0, out.stderr);
  return Object.fromEntries(CAP_LINES.map((name) => {
    const match = new RegExp(`^${name}:\\s*([0-9a-f]+)$`, "m").exec(out.stdout);
    assert.ok(match, `${name} in /proc/self/status`);
    return [name, BigInt(`0x${match[1]}`)];
  }));
}

threatTest("capabilities", NOT_ROOT, async (t) => {
  const cat = { argv: ["cat", "/proc/self/status"], cwd: "/", env: ENV };
  const status = (policy: SandboxPolicy, layers: Layers) =>
    runPlan(layeredPlan(policy, cat, layers)).then(capabilityLines);
  await t.step("positive control: root holds capabilities without the sandbox", async () => {
    const caps = capabilityLines(await run("cat", ["/proc/self/status"]));
    assert.notEqual(caps.CapEff, 0n);
    assert.notEqual(caps.CapBnd, 0n);
  });
  await t.step("positive control: root holds capabilities with no layer", async () => {
    const caps = await status(POLICY, []);
    assert.notEqual(caps.CapEff, 0n);
    assert.notEqual(caps.CapBnd, 0n);
  });
  const variants: Layers[] = [["capabilities"], "all"];
  for (const layers of variants) {
    await t.step(`${describeLayers(layers)}: every set is empty`, async () => {
      const caps = await status(POLICY, layers);
      for (const name of CAP_LINES) assert.equal(caps[name], 0n, name);
    });
  }
  // A caller without CAP_SETPCAP cannot empty the bounding set, from which execve gives root its
  // capabilities back: then no_new_privs and the emptied sets must be what keeps them away.
  await t.step(
    "capability drop without the bounding set, with no_new_privs: none held",
    async () => {
      const plan = layeredPlan(POLICY, cat, ["capabilities", "no_new_privs"]);
      assert.ok(plan.capabilities);
      const caps = capabilityLines(
        await runPlan({ ...plan, capabilities: { ...plan.capabilities, dropBounding: [] } }),
      );
      assert.notEqual(caps.CapBnd, 0n, "the bounding set is left as it was");
      for (const name of ["CapInh", "CapPrm", "CapEff", "CapAmb"]) {
        assert.equal(caps[name], 0n, name);
      }
    },
  );
  await t.step("all layers with full write and network: their capabilities only", async () => {
    // Full write as root needs the network too (or --run-as): it could reach it anyway.
    const policy = new SandboxPolicy(["disk-full-write-access", "network-full-access"]);
    const caps = await status(policy, "all");
    const mask = [...FULL_WRITE_CAPABILITIES, ...FULL_NETWORK_CAPABILITIES]
      .reduce((m, cap) => m | (1n << BigInt(cap)), 0n);
    assert.equal(caps.CapEff, mask);
    assert.equal(caps.CapPrm, mask);
    assert.equal(caps.CapBnd, mask);
    assert.equal(caps.CapInh, 0n);
    assert.equal(caps.CapAmb, 0n);
  });
});

threatTest("chown", firstReason(NO_GCC, NOT_ROOT), async (t) => {
  await withRootFile(async (file) => {
    await assertLayers(t, {
      policy: POLICY,
      runAs: nobody(),
      args: ["chown", file, "65534", "65534"],
      worked: "changed",
      reached() {
        assert.equal(Deno.statSync(file).uid, 65534);
        Deno.chownSync(file, 0, 0);
      },
      unchanged: () => assert.equal(Deno.statSync(file).uid, 0),
      denials: [
        { layers: ["capabilities"], refused: "chown EPERM" },
        { layers: ["run_as"], refused: "chown EPERM" },
        { layers: "all", refused: "chown EPERM" },
      ],
    });
  });
});

threatTest("chmod", firstReason(NO_GCC, NOT_ROOT), async (t) => {
  await withRootFile(async (file) => {
    await assertLayers(t, {
      policy: POLICY,
      runAs: nobody(),
      args: ["chmod", file, "4777"],
      worked: "changed",
      reached() {
        assert.equal(Deno.statSync(file).mode! & 0o7777, 0o4777);
        Deno.chmodSync(file, 0o644);
      },
      unchanged: () => assert.equal(Deno.statSync(file).mode! & 0o7777, 0o644),
      denials: [
        { layers: ["run_as"], refused: "chmod EPERM" },
        { layers: "all", refused: "chmod EPERM", runAs: true },
      ],
    });
  });
});

threatTest("utime", firstReason(NO_GCC, NOT_ROOT), async (t) => {
  await withRootFile(async (file) => {
    const mtime = () => Deno.statSync(file).mtime!.getTime();
    await assertLayers(t, {
      policy: POLICY,
      runAs: nobody(),
      args: ["utime", file],
      worked: "changed",
      reached() {
        assert.equal(mtime(), 0, "set to the epoch");
        const now = new Date();
        Deno.utimeSync(file, now, now);
      },
      unchanged: () => assert.notEqual(mtime(), 0),
      denials: [
        { layers: ["run_as"], refused: "utimensat EPERM" },
        { layers: "all", refused: "utimensat EPERM", runAs: true },
      ],
    });
  });
});

/** Checks for a case that sets the extended attribute `name` to `pwned` on `file`. */
function xattr(file: string, name: string) {
  return {
    async reached() {
      assert.equal((await runProbe(["getxattr", file, name])).stdout, "ok pwned\n");
      assert.equal((await runProbe(["removexattr", file, name])).stdout, "ok removed\n");
    },
    async unchanged() {
      assert.equal((await runProbe(["getxattr", file, name])).stdout, "refused getxattr ENODATA\n");
    },
  };
}

threatTest("user-xattr", firstReason(NO_GCC, NOT_ROOT), async (t) => {
  await withRootFile(async (file) => {
    await assertLayers(t, {
      policy: POLICY,
      runAs: nobody(),
      args: ["setxattr", file, "user.llmx", "pwned"],
      worked: "set",
      ...xattr(file, "user.llmx"),
      denials: [
        { layers: ["run_as"], refused: "setxattr EACCES" },
        { layers: "all", refused: "setxattr EACCES", runAs: true },
      ],
    });
  });
});

threatTest("trusted-xattr", firstReason(NO_GCC, NOT_ROOT), async (t) => {
  await withRootFile(async (file) => {
    await assertLayers(t, {
      policy: POLICY,
      args: ["setxattr", file, "trusted.llmx", "pwned"],
      worked: "set",
      ...xattr(file, "trusted.llmx"),
      denials: [
        { layers: ["capabilities"], refused: "setxattr EPERM" },
        { layers: "all", refused: "setxattr EPERM" },
      ],
    });
  });
});

threatTest("keyring", NO_GCC, async (t) => {
  // The probe adds a key to its own process keyring, which dies with it: nothing shared is
  // touched, and the call is the one a reader of the user's keyrings would need too.
  await assertLayers(t, {
    policy: POLICY,
    args: ["add-key"],
    worked: "added",
    denials: [
      { layers: ["seccomp"], refused: "add_key EPERM" },
      { layers: "all", refused: "add_key EPERM" },
    ],
  });
});

/** Why a setuid program made in a temporary folder would not run setuid here, or `undefined`. */
function setuidUnavailable(): string | undefined {
  if (NOT_ROOT) return NOT_ROOT;
  if (!which("id")) return "id not installed";
  // The mount that holds the temporary folder: the longest mount point that prefixes it.
  const tmp = Deno.realPathSync(tmpdir());
  let best = { point: "", nosuid: false };
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const fields = line.split(" ");
    const [point, options] = [fields[4], fields[5] ?? ""];
    const inside = point === "/" || tmp === point || tmp.startsWith(`${point}/`);
    if (point && inside && point.length >= best.point.length) {
      best = { point, nosuid: options.split(",").includes("nosuid") };
    }
  }
  return best.nosuid ? `the temporary folder's mount (${best.point}) is nosuid` : undefined;
}

threatTest("setuid", setuidUnavailable(), async (t) => {
  const dir = tempDir();
  Deno.chmodSync(dir, 0o755);
  try {
    // A setuid-root copy of id: prints the effective uid it runs with.
    const id = `${dir}/id`;
    Deno.copyFileSync(which("id")!, id);
    Deno.chmodSync(id, 0o4755);
    const command = { argv: [id, "-u"], cwd: "/", env: ENV, runAs: nobody() };
    const euid = async (layers: Layers) => {
      const out = await runPlan(layeredPlan(POLICY, command, layers));
      assert.equal(out.code, 0, out.stderr);
      return out.stdout.trim();
    };
    await t.step(
      "positive control: nobody becomes root through it with --run-as alone",
      async () => {
        assert.equal(await euid(["run_as"]), "0");
      },
    );
    const variants: Layers[] = [["run_as", "no_new_privs"], "all"];
    for (const layers of variants) {
      const name = layers === "all" ? "all layers with --run-as nobody" : describeLayers(layers);
      await t.step(`${name}: the effective uid stays nobody's`, async () => {
        assert.equal(await euid(layers), "65534");
      });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

threatTest("setid-bits", firstReason(NO_GCC, NOT_ROOT), async (t) => {
  await withRootFile(async (file) => {
    await assertLayers(t, {
      policy: POLICY,
      runAs: nobody(),
      args: ["chmod", file, "4755"],
      worked: "changed",
      reached() {
        assert.equal(Deno.statSync(file).mode! & 0o7777, 0o4755);
        Deno.chmodSync(file, 0o644);
      },
      unchanged: () => assert.equal(Deno.statSync(file).mode! & 0o7777, 0o644),
      denials: [
        { layers: ["seccomp"], refused: "chmod EPERM" },
        { layers: ["run_as"], refused: "chmod EPERM" },
        { layers: "all", refused: "chmod EPERM" },
      ],
    });
    await t.step("the other mode bits stay root's to change (see the README)", async () => {
      const plan = layeredPlan(POLICY, probeCommand(["chmod", file, "0755"]), ["seccomp"]);
      assertWorked(await runPlan(plan), "changed");
      assert.equal(Deno.statSync(file).mode! & 0o7777, 0o755);
    });
  });
});

threatTest("root-full-write", NOT_ROOT, async (t) => {
  // Writing core_pattern for real would change how this machine handles crashes: what stands
  // in the way is the planner, and the plan it refuses is shown to allow that write.
  const fullWrite = new SandboxPolicy(["disk-full-read-access", "disk-full-write-access"]);
  const command = { argv: ["true"], cwd: "/", env: { PATH: "/usr/bin:/bin" } };
  await t.step("positive control: as another user the same policy is planned", () => {
    const plan = planSandbox(fullWrite, { ...command, runAs: nobody() }, probeKernel());
    const root = plan.landlock.rules.find((rule) => rule.path === "/");
    assert.ok(root?.rights.includes("write_file"), "/proc/sys is writable under full write");
  });
  await t.step("as root without the network: refused, exit 2", async () => {
    assert.throws(
      () => planSandbox(fullWrite, command, probeKernel()),
      (error: unknown) => error instanceof PolicyError && error.kind === "root-full-write",
    );
    const out = await runCli(["-s", "disk-full-write-access", "--", "true"]);
    assert.equal(out.code, 2, out.stderr);
    assert.match(out.stderr, /core_pattern.*--run-as USER/);
  });
});

threatTest("run-as-root", NOT_ROOT, async (t) => {
  await t.step("positive control: --run-as another user runs full write", async () => {
    const out = await runCli([
      "-q",
      "-s",
      "disk-full-write-access",
      "--run-as",
      "nobody",
      "--cwd",
      "/",
      "--",
      "true",
    ]);
    assert.equal(out.code, 0, out.stderr);
  });
  for (const who of ["root", "0", "root:root"]) {
    await t.step(`--run-as ${who}: refused (exit 2)`, async () => {
      const out = await runCli(["-s", "disk-full-write-access", "--run-as", who, "--", "true"]);
      assert.equal(out.code, 2, out.stderr);
      assert.match(out.stderr, /is uid 0: the command would still be root/);
      assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
    });
  }
});

threatTest("kernel-interface", undefined, async (t) => {
  const command = { argv: ["true"], cwd: "/", env: { PATH: "/usr/bin:/bin" } };
  const plan = (folder: string) =>
    planSandbox(
      new SandboxPolicy(["disk-full-read-access", `disk-write-folder=${folder}`]),
      command,
      probeKernel(),
    );
  await t.step("positive control: a folder of the test's own is granted", () => {
    const dir = tempDir();
    try {
      assert.ok(plan(dir).writableRoots.includes(dir));
    } finally {
      Deno.removeSync(dir);
    }
  });
  for (const folder of ["/proc/sys/kernel", "/proc/self", "/sys", "/sys/fs/cgroup"]) {
    await t.step(`${folder}: refused (exit 2)`, async () => {
      assert.throws(
        () => plan(folder),
        (error: unknown) => error instanceof PolicyError && error.kind === "kernel-interface",
      );
      const out = await runCli(["-s", `disk-write-folder=${folder}`, "--", "true"]);
      assert.equal(out.code, 2, out.stderr);
      assert.match(out.stderr, /is in \/proc, \/sys or \/dev/);
    });
  }
});
