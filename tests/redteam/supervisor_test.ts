// Red team, the supervisor: what lets a timeout or an abort end everything the command started,
// the report of how it ended, and the files a later run loads before its sandbox. Only cgroups,
// processes, files and caches this test made are touched.

import assert from "node:assert/strict";
import { exists, MAIN, type Output, run, tempDir } from "../_helpers.ts";
import { SandboxPolicy } from "../../policy/sandbox_policy.ts";
import { ownCgroupDir } from "../../exec/cgroup.ts";
import { assertLayers, firstReason, NO_GCC, NOT_ROOT, threatTest } from "./_redteam.ts";

const POLICY = new SandboxPolicy([]);

function cgroupUnavailable(): string | undefined {
  try {
    const own = ownCgroupDir();
    if (own === undefined) return "no cgroup v2 hierarchy";
    Deno.statSync(`${own}/cgroup.procs`);
    return undefined;
  } catch (error) {
    return `no cgroup v2 folder of our own: ${(error as Error).message}`;
  }
}

threatTest("clone3-cgroup", firstReason(NO_GCC, NOT_ROOT, cgroupUnavailable()), async (t) => {
  // The command runs in the cgroup the supervisor kills; the way out is this test's own cgroup.
  await assertLayers(t, {
    policy: POLICY,
    args: ["clone3-into", ownCgroupDir()!],
    worked: "cloned",
    denials: [
      { layers: ["seccomp"], refused: "clone3 ENOSYS" },
      { layers: "all", refused: "clone3 ENOSYS" },
    ],
  });
});

threatTest("supervisor-fds", NO_GCC, async (t) => {
  // The plan (a sealed memfd) and the report (a pipe) are descriptors of the supervisor, which
  // closes its copies once the child has opened them; what the command could still reach is
  // any descriptor of the supervisor's, through /proc/SUPERVISOR/fd. Here: a file this test
  // holds open, standing for them.
  const dir = tempDir();
  const file = await Deno.open(`${dir}/held`, { read: true, write: true, create: true });
  try {
    await file.write(new TextEncoder().encode("held\n"));
    const fd = [...Deno.readDirSync("/proc/self/fd")].map((entry) => entry.name).find((name) => {
      try {
        return Deno.readLinkSync(`/proc/self/fd/${name}`) === `${dir}/held`;
      } catch {
        return false;
      }
    });
    assert.ok(fd, "the held file's descriptor");
    await assertLayers(t, {
      policy: POLICY,
      args: ["read", `/proc/${Deno.pid}/fd/${fd}`],
      worked: "held",
      denials: [
        { layers: ["landlock"], refused: "open EACCES" },
        { layers: "all", refused: "open EACCES" },
      ],
    });
  } finally {
    file.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

/** Runs the CLI with its own Deno cache (a folder this test made). */
function cliWithCache(denoDir: string, args: readonly string[]): Promise<Output> {
  return run(Deno.execPath(), ["run", "--allow-all", "--quiet", MAIN, ...args], {
    env: { DENO_DIR: denoDir },
  });
}

threatTest("self-rewrite", undefined, async (t) => {
  const base = tempDir();
  try {
    const cache = `${base}/deno-dir`;
    const work = `${base}/work`;
    Deno.mkdirSync(cache);
    Deno.mkdirSync(work);
    const touch = (folder: string) => ["--", "sh", "-c", `echo x > ${folder}/marker`];
    await t.step("positive control: a folder beside them is granted and written", async () => {
      const out = await cliWithCache(cache, [
        "-q",
        "-s",
        `disk-write-folder=${work}`,
        ...touch(work),
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.ok(exists(`${work}/marker`));
    });
    const refused: [string, string[], string, string][] = [
      ["Deno's cache (DENO_DIR)", ["-s", `disk-write-folder=${cache}`], cache, "DENO_DIR"],
      ["a folder above Deno's cache", ["-s", `disk-write-folder=${base}`], cache, "DENO_DIR"],
      [
        "this tool's source folder (the cwd)",
        // The folder the CLI runs from (a copy outside a shared temporary folder, see MAIN).
        ["--cwd", Deno.realPathSync(MAIN.replace(/\/[^/]+$/, "")), "-s", "disk-write-cwd"],
        "",
        "source folder of llmx-sandbox",
      ],
      [
        "Deno's own folder",
        ["-s", `disk-write-folder=${Deno.realPathSync(Deno.execPath()).replace(/\/[^/]+$/, "")}`],
        "",
        "Deno binary",
      ],
    ];
    for (const [name, grant, folder, named] of refused) {
      await t.step(`${name}: refused (exit 2), nothing runs`, async () => {
        const target = folder || base;
        const out = await cliWithCache(cache, ["-q", ...grant, ...touch(target)]);
        assert.equal(out.code, 2, out.stderr);
        assert.match(out.stderr, new RegExp(named));
        assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
        assert.ok(!exists(`${target}/marker`), "nothing ran");
      });
    }
  } finally {
    Deno.removeSync(base, { recursive: true });
  }
});
