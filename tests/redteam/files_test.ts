// Red team, files: every way to write outside the writable roots that does not go through a
// plain open of the path (magic links in /proc, truncate, device nodes, descriptors opened
// before the sandbox). Only files in temporary folders this test made are ever touched.

import assert from "node:assert/strict";
import { exists, run, tempDir } from "../_helpers.ts";
import { SandboxError } from "../../exec/errors.ts";
import { SandboxPolicy } from "../../policy/sandbox_policy.ts";
import {
  assertLayers,
  assertRefused,
  assertWorked,
  firstReason,
  landlockBelow,
  layeredPlan,
  type Layers,
  NO_GCC,
  NOT_ROOT,
  probe,
  probeCommand,
  runPlan,
  Target,
  threatTest,
  withPlanFile,
} from "./_redteam.ts";

const KEEP = "keep\n";
const PWNED = "pwned\n";

/**
 * Runs a case with two fresh folders: one outside every writable root, holding `file` (content
 * `KEEP`), and the only writable root. Both are removed afterwards.
 */
async function withFolders(
  fn: (outside: string, file: string, root: string, policy: SandboxPolicy) => Promise<void>,
): Promise<void> {
  const outside = tempDir();
  const root = tempDir();
  try {
    const file = `${outside}/file`;
    Deno.writeTextFileSync(file, KEEP);
    await fn(outside, file, root, SandboxPolicy.readOnlyWithWritableRoots([root]));
  } finally {
    Deno.removeSync(outside, { recursive: true });
    Deno.removeSync(root, { recursive: true });
  }
}

/** Checks for a case that appends to `file`: the append happened (then undone), or not. */
function appended(file: string) {
  return {
    reached() {
      assert.equal(Deno.readTextFileSync(file), KEEP + PWNED);
      Deno.writeTextFileSync(file, KEEP);
    },
    unchanged() {
      assert.equal(Deno.readTextFileSync(file), KEEP);
    },
  };
}

threatTest("write-outside", NO_GCC, async (t) => {
  await withFolders(async (outside, _file, _root, policy) => {
    let n = 0;
    const path = () => `${outside}/created-${n}`;
    await assertLayers(t, {
      policy,
      args: () => Promise.resolve(["create", `${outside}/created-${++n}`]),
      worked: "wrote",
      reached: () => assert.equal(Deno.readTextFileSync(path()), PWNED),
      unchanged: () => assert.throws(() => Deno.lstatSync(path()), Deno.errors.NotFound),
      denials: [
        { layers: ["landlock"], refused: "open EACCES" },
        { layers: "all", refused: "open EACCES" },
      ],
    });
  });
});

threatTest("truncate-outside", NO_GCC, async (t) => {
  await withFolders(async (_outside, file, _root, policy) => {
    await assertLayers(t, {
      policy,
      args: ["truncate", file],
      worked: "truncated",
      reached() {
        assert.equal(Deno.readTextFileSync(file), "");
        Deno.writeTextFileSync(file, KEEP);
      },
      unchanged: () => assert.equal(Deno.readTextFileSync(file), KEEP),
      denials: [
        { layers: ["landlock"], refused: "truncate EACCES", skip: landlockBelow(3) },
        { layers: "all", refused: "truncate EACCES", skip: landlockBelow(3) },
      ],
    });
  });
});

threatTest("proc-fd", NO_GCC, async (t) => {
  await withFolders(async (_outside, file, _root, policy) => {
    await assertLayers(t, {
      policy,
      // Opens the file read-only (reads are allowed), then /proc/self/fd/N for writing.
      args: ["reopen", file],
      worked: "wrote",
      ...appended(file),
      denials: [
        { layers: ["landlock"], refused: "open EACCES" },
        { layers: "all", refused: "open EACCES" },
      ],
    });
  });
});

threatTest("proc-self-root", NO_GCC, async (t) => {
  await withFolders(async (_outside, file, _root, policy) => {
    await assertLayers(t, {
      policy,
      args: ["append", `/proc/self/root${file}`],
      worked: "wrote",
      ...appended(file),
      denials: [
        { layers: ["landlock"], refused: "open EACCES" },
        { layers: "all", refused: "open EACCES" },
      ],
    });
  });
});

threatTest("proc-pid-root", NO_GCC, async (t) => {
  await withFolders(async (_outside, file, _root, policy) => {
    const target = await Target.start();
    try {
      await assertLayers(t, {
        policy,
        args: ["append", `/proc/${target.pid}/root${file}`],
        worked: "wrote",
        ...appended(file),
        denials: [
          // Following the link needs ptrace-class access to the target, which Landlock keeps
          // inside the sandbox; as root, so does holding fewer capabilities than the target.
          { layers: ["landlock"], refused: "open EACCES" },
          { layers: ["capabilities"], refused: "open EACCES", skip: NOT_ROOT },
          { layers: "all", refused: "open EACCES" },
        ],
      });
    } finally {
      await target.stop();
    }
  });
});

threatTest("proc-self-cwd", NO_GCC, async (t) => {
  await withFolders(async (outside, file, _root, policy) => {
    await assertLayers(t, {
      policy,
      cwd: outside,
      args: ["append", "/proc/self/cwd/file"],
      worked: "wrote",
      ...appended(file),
      denials: [
        { layers: ["landlock"], refused: "open EACCES" },
        { layers: "all", refused: "open EACCES" },
      ],
    });
  });
});

threatTest("proc-pid-cwd", NO_GCC, async (t) => {
  await withFolders(async (outside, file, _root, policy) => {
    const target = await Target.start(undefined, outside);
    try {
      await assertLayers(t, {
        policy,
        args: ["append", `/proc/${target.pid}/cwd/file`],
        worked: "wrote",
        ...appended(file),
        denials: [
          { layers: ["landlock"], refused: "open EACCES" },
          { layers: ["capabilities"], refused: "open EACCES", skip: NOT_ROOT },
          { layers: "all", refused: "open EACCES" },
        ],
      });
    } finally {
      await target.stop();
    }
  });
});

threatTest("device-node", firstReason(NO_GCC, NOT_ROOT), async (t) => {
  await withFolders(async (_outside, _file, root, policy) => {
    // 1:3 are /dev/null's numbers: the node made by the positive controls is harmless.
    let n = 0;
    const node = () => `${root}/node-${n}`;
    await assertLayers(t, {
      policy,
      args: () => Promise.resolve(["mknod", `${root}/node-${++n}`]),
      worked: "made",
      reached() {
        const info = Deno.lstatSync(node());
        assert.equal(info.isCharDevice, true);
        assert.equal(info.rdev, (1 << 8) | 3);
        Deno.removeSync(node());
      },
      unchanged: () => assert.throws(() => Deno.lstatSync(node()), Deno.errors.NotFound),
      denials: [
        { layers: ["landlock"], refused: "mknod EACCES" },
        { layers: ["capabilities"], refused: "mknod EPERM" },
        // Landlock's hook runs before the capability check.
        { layers: "all", refused: "mknod EACCES" },
      ],
    });
  });
});

threatTest("inherited-fd", NO_GCC, async (t) => {
  await withFolders(async (_outside, file, _root, policy) => {
    // fd 3 is opened by a shell before the sandbox; in-place mode then inherits it, as a CLI
    // started from that shell would.
    const WITH_FD_3 = 'exec 3>>"$0"; exec "$@"';
    const args = ["write-fd", "3", PWNED];
    await t.step("positive control: writes through it without the sandbox", async () => {
      const out = await run("sh", ["-c", WITH_FD_3, file, probe(), ...args]);
      assertWorked(out, "wrote");
      assert.equal(Deno.readTextFileSync(file), KEEP + PWNED);
      Deno.writeTextFileSync(file, KEEP);
    });
    // Descriptors are closed on exec whatever the layers: with none, or all of them.
    const variants: Layers[] = [[], "all"];
    for (const layers of variants) {
      const name = layers === "all" ? "all layers" : "close-on-exec alone (no layer)";
      await t.step(`${name}: write EBADF`, async () => {
        const plan = layeredPlan(policy, probeCommand(args), layers);
        const out = await withPlanFile(
          plan,
          (command) => run("sh", ["-c", WITH_FD_3, file, ...command]),
        );
        assertRefused(out, "write", "EBADF");
        assert.equal(Deno.readTextFileSync(file), KEEP);
      });
    }
  });
});

threatTest("planned-inode", NO_GCC, async (t) => {
  // A resident process swaps the planned root between planning and applying: here the test
  // does the swap itself, between planSandbox() and the child's start.
  const base = tempDir();
  try {
    const root = `${base}/root`;
    const elsewhere = `${base}/elsewhere`;
    Deno.mkdirSync(elsewhere);
    const plan = () => {
      Deno.mkdirSync(root);
      return layeredPlan(
        SandboxPolicy.readOnlyWithWritableRoots([root]),
        probeCommand(["create", `${root}/marker`]),
        "all",
      );
    };
    await t.step("positive control: unswapped, the command writes in the root", async () => {
      assertWorked(await runPlan(plan()), "wrote");
      assert.ok(exists(`${root}/marker`));
      Deno.removeSync(root, { recursive: true });
    });
    for (
      const [name, swap] of [
        ["a symlink to another folder", () => Deno.symlinkSync(elsewhere, root)],
        // Made before the root goes, so that it cannot reuse the root's inode number.
        ["another folder renamed onto it", () => Deno.renameSync(`${base}/other`, root)],
      ] as const
    ) {
      await t.step(`${name}: refused, nothing runs (125)`, async () => {
        const planned = plan();
        Deno.mkdirSync(`${base}/other`);
        Deno.removeSync(root);
        swap();
        if (exists(`${base}/other`)) Deno.removeSync(`${base}/other`);
        await assert.rejects(
          () => runPlan(planned),
          (error: unknown) =>
            error instanceof SandboxError && error.kind === "apply-failed" &&
            /is not what was planned/.test(error.message),
        );
        assert.ok(!exists(`${elsewhere}/marker`) && !exists(`${root}/marker`), "nothing written");
        Deno.removeSync(root, { recursive: true });
      });
    }
  } finally {
    Deno.removeSync(base, { recursive: true });
  }
});
