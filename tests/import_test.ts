// End to end: another Deno program imports mod.ts over HTTP, as a user would from a URL, and
// runs sandboxed commands through it. A fresh DENO_DIR proves that importing mod.ts caches
// everything the child needs (it starts with --cached-only).

import assert from "node:assert/strict";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildPreloadMarker, exists, NO_KILL_CGROUP, run, tempDir, which } from "./_helpers.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A program written from the README's library section. */
const PROGRAM = (url: string, work: string, preload: string | undefined) => `
import { execSandboxed, SandboxError } from "${url}";

const report: Record<string, unknown> = {};
const denied = await execSandboxed(
  { command: ["sh", "-c", "echo hi > ${work}/denied.txt"], cwd: "/" },
  ["disk-full-read-access"],
);
report.denied = { exitCode: denied.exitCode, sandboxDenied: denied.sandboxDenied };

const allowed = await execSandboxed(
  { command: ["sh", "-c", "echo hi > allowed.txt && cat allowed.txt"], cwd: "${work}" },
  ["disk-full-read-access", "disk-write-cwd"],
);
report.allowed = allowed.stdout;

const timed = await execSandboxed(
  {
    command: ["sh", "-c", "setsid sleep 60 & echo $! > gc.pid; wait"],
    cwd: "${work}",
    timeoutMs: 300,
  },
  ["disk-full-read-access", "disk-write-cwd"],
);
report.timed = { timedOut: timed.timedOut, exitCode: timed.exitCode };

const own = await execSandboxed({ command: ["sh", "-c", "exit 125"], cwd: "${work}" }, []);
report.own125 = own.exitCode;

${
  preload
    ? `const preloaded = await execSandboxed(
  { command: ["true"], cwd: "${work}", env: { PATH: "/usr/bin:/bin", LD_PRELOAD: "${preload}" } },
  ["disk-full-read-access", "disk-write-cwd"],
);
report.preloaded = preloaded.exitCode;`
    : ""
}

try {
  await execSandboxed({ command: ["true"], cwd: "/" }, ["disk-write-everything"]);
  report.badPolicy = "ran";
} catch (error) {
  report.badPolicy = error instanceof SandboxError ? error.kind : String(error);
}
console.log(JSON.stringify(report));
`;

/** Gone, or a zombie waiting for init (which reaps it, not us, once it was reparented). */
function isDead(pid: string): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return true;
  }
}

const TYPES: Record<string, string> = {
  ".ts": "application/typescript",
  ".json": "application/json",
};

Deno.test("mod.ts imported over HTTP runs sandboxed commands", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    try {
      const body = await Deno.readFile(join(ROOT, path));
      return new Response(body, {
        headers: { "content-type": TYPES[extname(path)] ?? "text/plain" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const dir = tempDir();
  const work = `${dir}/work`;
  Deno.mkdirSync(work);
  try {
    const url = `http://127.0.0.1:${server.addr.port}/mod.ts`;
    // An LD_PRELOAD library that writes a marker outside the writable root, when gcc is here.
    const marker = `${dir}/preload-marker`;
    const preload = which("gcc") ? await buildPreloadMarker(dir, marker) : undefined;
    if (preload) {
      const direct = await run("true", [], { env: { LD_PRELOAD: preload } });
      assert.equal(direct.code, 0);
      assert.ok(exists(marker), "positive control: the library writes without the sandbox");
      Deno.removeSync(marker);
    }
    Deno.writeTextFileSync(`${dir}/program.ts`, PROGRAM(url, work, preload));
    const out = await run(Deno.execPath(), [
      "run",
      "--allow-all",
      "--no-lock",
      "--no-config",
      `${dir}/program.ts`,
    ], {
      cwd: dir,
      env: { DENO_DIR: `${dir}/deno-dir`, NO_COLOR: "1" },
    });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /Download http:\/\/127\.0\.0\.1:\d+\/exec\/child_main\.ts/);
    const report = JSON.parse(out.stdout);
    assert.notEqual(report.denied.exitCode, 0);
    assert.equal(report.denied.sandboxDenied, true);
    assert.throws(() => Deno.statSync(`${work}/denied.txt`), Deno.errors.NotFound);
    assert.equal(report.allowed, "hi\n");
    assert.deepEqual(report.timed, { timedOut: true, exitCode: 124 });
    const grandchild = Deno.readTextFileSync(`${work}/gc.pid`).trim();
    assert.match(grandchild, /^\d+$/);
    if (NO_KILL_CGROUP === undefined) {
      assert.ok(isDead(grandchild), `grandchild ${grandchild} is still running`);
    } else {
      // Only the process group dies here (see NO_KILL_CGROUP): the setsid one is ours to end.
      try {
        Deno.kill(Number(grandchild), "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    assert.equal(report.own125, 125);
    assert.equal(report.badPolicy, "invalid-policy");
    if (preload) {
      assert.equal(report.preloaded, 0);
      assert.equal(exists(marker), false, "the LD_PRELOAD write outside did not happen");
    }
  } finally {
    await server.shutdown();
    Deno.removeSync(dir, { recursive: true });
  }
});
