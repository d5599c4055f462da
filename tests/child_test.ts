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

const CHILD = fileURLToPath(new URL("../exec/child_main.ts", import.meta.url));

Deno.test("the child refuses a plan file that was changed after it was written", async () => {
  const dir = tempDir();
  try {
    const plan = planSandbox(
      SandboxPolicy.readOnlyWithWritableRoots([dir]),
      { argv: ["touch", `${dir}/marker`], cwd: dir, env: { PATH: "/usr/bin:/bin" } },
      probeKernel(),
    );
    const bytes = new TextEncoder().encode(JSON.stringify(plan));
    Deno.writeFileSync(`${dir}/plan.json`, bytes);
    const start = (digest: string) => {
      Deno.writeTextFileSync(`${dir}/channel`, "");
      return run(Deno.execPath(), [
        "run",
        "-A",
        CHILD,
        `${dir}/plan.json`,
        digest,
        `${dir}/channel`,
      ]);
    };
    // Positive control: with the digest of what was written, the command runs.
    const ok = await start(sha256Hex(bytes));
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(Deno.statSync(`${dir}/marker`).isFile);
    Deno.removeSync(`${dir}/marker`);

    // A sibling rewrites the plan (here: to full write access) after the digest was taken.
    const tampered = { ...plan, landlock: { ...plan.landlock, apply: false }, seccomp: null };
    Deno.writeTextFileSync(`${dir}/plan.json`, JSON.stringify(tampered));
    const refused = await start(sha256Hex(bytes));
    assert.equal(refused.code, 125);
    assert.match(Deno.readTextFileSync(`${dir}/channel`), /^started\nerror\t.*was changed/);
    assert.throws(() => Deno.statSync(`${dir}/marker`), Deno.errors.NotFound);
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
