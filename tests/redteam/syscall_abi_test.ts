// Red team, syscall entry points: a filter written for x86_64 numbers must not be walked around
// through another ABI of the same kernel (the 32-bit int 0x80 entry, x32 numbers).

import assert from "node:assert/strict";
import { runBpf } from "../_bpf.ts";
import {
  AUDIT_ARCH_X86_64,
  planSeccomp,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_KILL_PROCESS,
  X32_SYSCALL_BIT,
} from "../../policy/seccomp.ts";
import { SandboxPolicy } from "../../policy/sandbox_policy.ts";
import {
  assertWorked,
  describeLayers,
  firstReason,
  layeredPlan,
  type Layers,
  NO_GCC,
  probe,
  probeCommand,
  runPlan,
  runProbe,
  threatTest,
} from "./_redteam.ts";

const NOT_X86_64 = Deno.build.arch === "x86_64" ? undefined : "x86_64 only";
const POLICY = new SandboxPolicy([]);

/** Why the probe's escape does not work here even without the sandbox, or `undefined`. */
function unavailable(command: string, why: string): string | undefined {
  const out = new Deno.Command(probe(), { args: [command], stdout: "piped", stderr: "piped" })
    .outputSync();
  const line = new TextDecoder().decode(out.stdout).trim();
  return out.success ? undefined : `${why} (${line || `signal ${out.signal}`})`;
}

const NO_INT80 = firstReason(NOT_X86_64, NO_GCC) ??
  unavailable("int80", "the kernel has no 32-bit entry (IA32 emulation off)");
const NO_X32 = firstReason(NOT_X86_64, NO_GCC) ??
  unavailable("x32", "x32 syscalls are not enabled on this kernel");

async function assertKilled(t: Deno.TestContext, command: string): Promise<void> {
  await t.step("positive control: works without the sandbox", async () => {
    assertWorked(await runProbe([command]));
  });
  await t.step("positive control: works with no layer", async () => {
    assertWorked(await runPlan(layeredPlan(POLICY, probeCommand([command]), [])));
  });
  const variants: Layers[] = [["seccomp"], "all"];
  for (const layers of variants) {
    await t.step(`${describeLayers(layers)}: killed by SIGSYS`, async () => {
      const out = await runPlan(layeredPlan(POLICY, probeCommand([command]), layers));
      assert.equal(out.signal, "SIGSYS", `${out.stdout}${out.stderr}`);
      assert.equal(out.stdout, "");
    });
  }
}

threatTest("int80", NO_INT80, (t) => assertKilled(t, "int80"));

threatTest("x32-bpf", undefined, () => {
  const getpid = 39;
  for (const restrictNetwork of [true, false]) {
    const { program } = planSeccomp({ arch: "x86_64", restrictNetwork });
    const decide = (nr: number) => runBpf(program, { nr, arch: AUDIT_ARCH_X86_64 });
    // Positive control: the same call with its x86_64 number is allowed.
    assert.equal(decide(getpid), SECCOMP_RET_ALLOW);
    for (const nr of [getpid, 0, 1, 41, 42, 101, 512, 547]) {
      assert.equal(decide(X32_SYSCALL_BIT | nr), SECCOMP_RET_KILL_PROCESS, `x32 number ${nr}`);
    }
  }
});

threatTest("x32-kernel", NO_X32, (t) => assertKilled(t, "x32"));
