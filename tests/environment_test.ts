// End to end: the command's environment reaches only execve. An LD_PRELOAD meant for the
// command must never run in the still unrestricted Deno child.

import assert from "node:assert/strict";
import { buildPreloadMarker, run, skipReason, tempDir, which } from "./_helpers.ts";
import { execSandboxed } from "../exec/sandboxed.ts";

const noGcc = which("gcc") ? undefined : "gcc not installed";

Deno.test({
  name: skipReason("an LD_PRELOAD for the command runs only inside the sandbox", noGcc),
  ignore: noGcc !== undefined,
}, async () => {
  const dir = tempDir();
  const work = `${dir}/work`;
  Deno.mkdirSync(work);
  try {
    // The library's constructor appends its process's name to a file outside the writable root.
    const marker = `${dir}/marker`;
    const env = { PATH: "/usr/bin:/bin", LD_PRELOAD: await buildPreloadMarker(dir, marker) };

    // Positive control: without the sandbox the library runs and writes the marker.
    const direct = await run("true", [], { env });
    assert.equal(direct.code, 0);
    assert.equal(Deno.readTextFileSync(marker), "true\n");
    Deno.removeSync(marker);

    const result = await execSandboxed({ command: ["true"], cwd: work, env }, [
      "disk-full-read-access",
      `disk-write-folder=${work}`,
    ]);
    assert.equal(result.exitCode, 0, result.stderr);
    // Neither the Deno child (no LD_PRELOAD in its environment) nor the sandboxed command
    // (Landlock denies the write) left a marker.
    assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the command gets exactly the environment it was given", async () => {
  const dir = tempDir();
  try {
    const result = await execSandboxed({
      command: ["env"],
      cwd: dir,
      env: { PATH: "/usr/bin:/bin", ONLY: "me" },
    }, []);
    assert.equal(result.exitCode, 0, result.stderr);
    const lines = result.stdout.trim().split("\n").sort();
    // Nothing of the caller's or the Deno child's environment leaks in; the sandbox adds its
    // markers.
    assert.deepEqual(lines, [
      "LLMX_SANDBOX=1",
      "LLMX_SANDBOX_NETWORK_DISABLED=1",
      "ONLY=me",
      "PATH=/usr/bin:/bin",
    ]);
    const online = await execSandboxed({ command: ["env"], cwd: dir, env: {} }, [
      "network-full-access",
    ]);
    assert.equal(online.stdout, "LLMX_SANDBOX=1\n", "no network marker with the network on");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
