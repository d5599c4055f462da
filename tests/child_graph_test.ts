// The supervised child starts once per sandboxed command: its module graph must stay the few
// files that apply a plan. Checked on the graph Deno itself reports, not on timings.

import assert from "node:assert/strict";

interface InfoDependency {
  code?: { specifier: string };
  isDynamic?: boolean;
}

interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
}

const ROOT = new URL("../", import.meta.url);

/** The modules a root loads at start-up: static code imports only (no types, no dynamic). */
async function staticGraph(root: string): Promise<string[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--no-config", root],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as { modules: InfoModule[] };
  const bySpecifier = new Map(info.modules.map((module) => [module.specifier, module]));
  const seen = new Set<string>();
  const visit = (specifier: string) => {
    if (seen.has(specifier)) return;
    seen.add(specifier);
    for (const dependency of bySpecifier.get(specifier)?.dependencies ?? []) {
      if (dependency.code && !dependency.isDynamic) visit(dependency.code.specifier);
    }
  };
  visit(new URL(root, ROOT).href);
  return [...seen].map((specifier) =>
    specifier.startsWith(ROOT.href) ? specifier.slice(ROOT.href.length) : specifier
  ).sort();
}

const CHILD_MODULES = [
  "exec/_sha256.ts",
  "exec/child.ts",
  "exec/child_limits.ts",
  "policy/path_search.ts",
  "exec/supervised_child.ts",
  "ffi/credentials.ts",
  "ffi/files.ts",
  "ffi/landlock.ts",
  "ffi/libc.ts",
  "ffi/process.ts",
  "ffi/rlimit.ts",
  "ffi/seccomp.ts",
  "policy/_plan_version.ts",
];

Deno.test("the child's entry loads only what applies a plan: no CLI, planner, JSON or node:", async () => {
  assert.deepEqual(
    await staticGraph("exec/child_main.ts"),
    ["exec/child_main.ts", ...CHILD_MODULES].sort(),
  );
});

Deno.test("main.ts (the compiled binary's entry) loads only the child before it knows its role", async () => {
  assert.deepEqual(await staticGraph("main.ts"), [...CHILD_MODULES, "main.ts"].sort());
});
