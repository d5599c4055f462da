// The supervised child on its own: it applies only the plan the supervisor wrote.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { run, skipReason, tempDir } from "./_helpers.ts";
import {
  firstReason,
  NO_GCC,
  nobody,
  NOT_ROOT,
  probeCommand,
  runPlan,
  withPlanFile,
} from "./redteam/_redteam.ts";
import { SandboxPolicy } from "../policy/sandbox_policy.ts";
import { planSandbox } from "../policy/plan.ts";
import { probeKernel } from "../exec/kernel.ts";
import { sha256Hex } from "../exec/_sha256.ts";
import { ChildChannel } from "../exec/channel.ts";

const CHILD = fileURLToPath(new URL("../exec/child_main.ts", import.meta.url));

Deno.test("the child applies only the plan its supervisor sealed, named by its digest", async (t) => {
  const dir = tempDir();
  try {
    const plan = planSandbox(
      SandboxPolicy.readOnlyWithWritableRoots([dir]),
      { argv: ["touch", `${dir}/marker`], cwd: dir, env: { PATH: "/usr/bin:/bin" } },
      probeKernel(),
    );
    const bytes = new TextEncoder().encode(JSON.stringify(plan));
    const start = async (digest: string, parent = String(Deno.pid)) => {
      const channel = new ChildChannel(bytes);
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CHILD, parent, String(channel.planFd), digest, String(channel.writeFd)],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const { code } = await child.output();
      return { code, lines: await channel.lines() };
    };
    await t.step(
      "positive control: with the digest of the sealed plan, the command runs",
      async () => {
        const ok = await start(sha256Hex(bytes));
        assert.equal(ok.code, 0, ok.lines.join("\n"));
        assert.deepEqual(ok.lines, ["started", "exec"]);
        assert.ok(Deno.statSync(`${dir}/marker`).isFile);
        Deno.removeSync(`${dir}/marker`);
      },
    );
    await t.step("another digest (another plan promised) is refused", async () => {
      const refused = await start(sha256Hex(new TextEncoder().encode("{}")));
      assert.equal(refused.code, 125);
      assert.match(refused.lines.join("\n"), /^started\nerror\t.*digest differs/);
      assert.throws(() => Deno.statSync(`${dir}/marker`), Deno.errors.NotFound);
    });
    await t.step("a child that is not the named supervisor's refuses", async () => {
      const refused = await start(sha256Hex(bytes), "1");
      assert.equal(refused.code, 125);
      assert.throws(() => Deno.statSync(`${dir}/marker`), Deno.errors.NotFound);
    });
    await t.step("nobody can change the sealed plan, the supervisor included", () => {
      const channel = new ChildChannel(bytes);
      try {
        assert.throws(
          () => Deno.writeTextFileSync(`/proc/self/fd/${channel.planFd}`, "{}"),
          Deno.errors.PermissionDenied,
        );
        assert.equal(
          Deno.readTextFileSync(`/proc/self/fd/${channel.planFd}`),
          JSON.stringify(plan),
        );
      } finally {
        channel.releaseChildEnds();
      }
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name: skipReason(
    "the supervised command keeps its parent-death signal after --run-as",
    firstReason(NO_GCC, NOT_ROOT),
  ),
  ignore: firstReason(NO_GCC, NOT_ROOT) !== undefined,
}, async (t) => {
  const command = probeCommand(["pdeathsig"], nobody());
  const plan = planSandbox(SandboxPolicy.readOnly(), command, probeKernel());
  // Any change of credentials clears PR_SET_PDEATHSIG: it must be set after the identity.
  await t.step("supervised: SIGKILL when the supervisor dies", async () => {
    const out = await runPlan(plan);
    assert.equal(out.stdout, "ok pdeathsig 9\n", out.stderr);
  });
  // Control: the probe reads what is there; in place nobody supervises, and nothing is set.
  await t.step("in place: none", async () => {
    const out = await withPlanFile(plan, (argv) => run(argv[0], argv.slice(1)));
    assert.equal(out.stdout, "ok pdeathsig 0\n", out.stderr);
  });
});
