// The red-team suite's in-place runner: reads a plan file, applies it to this process and
// `execve`s, as the CLI does without --timeout. For cases that need what only in-place mode
// gives: the caller's controlling terminal, a descriptor inherited from outside.

import { applyAndExec } from "../../exec/child.ts";
import type { SandboxPlan } from "../../policy/plan.ts";

const plan = JSON.parse(Deno.readTextFileSync(Deno.args[0])) as SandboxPlan;
Deno.exit(applyAndExec(plan, {
  newSession: false,
  reporter: {
    execing() {},
    failed: (message) => console.error(`apply-plan: cannot apply the sandbox: ${message}`),
  },
}));
