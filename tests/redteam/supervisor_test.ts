// Red team, the supervisor: what lets a timeout or an abort end everything the command started,
// the report of how it ended, and the files a later run loads before its sandbox. Only cgroups,
// processes, files and caches this test made are touched.

import assert from "node:assert/strict";
import {
  exists,
  launcher,
  MAIN,
  NO_KILL_CGROUP,
  type Output,
  run,
  tempDir,
  which,
} from "../_helpers.ts";
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

threatTest("launcher-path", which("readlink") ? undefined : "readlink not installed", async (t) => {
  // A folder first on PATH that a sandboxed command could have written (npm's
  // ./node_modules/.bin), holding a readlink that leaves a marker.
  const dir = tempDir();
  try {
    const bin = `${dir}/bin`;
    const marker = `${dir}/planted-ran`;
    Deno.mkdirSync(bin);
    Deno.writeTextFileSync(
      `${bin}/readlink`,
      `#!/bin/sh\necho ran >> ${marker}\nexec /usr/bin/env -u PATH readlink "$@"\n`,
    );
    Deno.chmodSync(`${bin}/readlink`, 0o755);
    const env = { PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}` };
    await t.step("positive control: readlink by name runs the planted one", async () => {
      const out = await run("sh", ["-c", "readlink -f /"], { env });
      assert.equal(out.stdout, "/\n", out.stderr);
      assert.ok(exists(marker), "the planted readlink ran");
      Deno.removeSync(marker);
    });
    await t.step("the launcher runs without it", async () => {
      const out = await run(launcher(), ["-q", "--cwd", dir, "--", "true"], { env });
      assert.equal(out.code, 0, out.stderr);
      assert.ok(!exists(marker), "the planted readlink did not run");
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

threatTest("config-dangling-link", undefined, async (t) => {
  // A home whose config folder is a symlink into the work folder, to a place that does not
  // exist yet: a command that may write the work folder would create the next run's config.
  const base = tempDir();
  try {
    const home = `${base}/home`;
    const work = `${base}/work`;
    Deno.mkdirSync(`${home}/.config`, { recursive: true });
    Deno.mkdirSync(work);
    const cli = (args: string[]) =>
      run(Deno.execPath(), ["run", "--allow-all", "--quiet", MAIN, ...args], {
        cwd: work,
        env: { HOME: home, XDG_CONFIG_HOME: "" },
      });
    const create = [
      "--",
      "sh",
      "-c",
      "mkdir -p dotfiles/llmx && echo '{}' > dotfiles/llmx/config.json",
    ];
    await t.step("positive control: the same link to a place outside the work folder", async () => {
      Deno.symlinkSync(`${base}/elsewhere/llmx`, `${home}/.config/llmx-sandbox`);
      const out = await cli(["-q", "-s", "disk-write-cwd", ...create]);
      assert.equal(out.code, 0, out.stderr);
      assert.ok(exists(`${work}/dotfiles/llmx/config.json`), "the command ran");
      Deno.removeSync(`${work}/dotfiles`, { recursive: true });
      Deno.removeSync(`${home}/.config/llmx-sandbox`);
    });
    await t.step("a link into the writable root: refused (exit 2), nothing runs", async () => {
      Deno.symlinkSync(`${work}/dotfiles/llmx`, `${home}/.config/llmx-sandbox`);
      const out = await cli(["-q", "-s", "disk-write-cwd", ...create]);
      assert.equal(out.code, 2, out.stderr);
      assert.match(out.stderr, /The config file .* is reached through the writable root/);
      assert.ok(!exists(`${work}/dotfiles`), "nothing ran");
    });
  } finally {
    Deno.removeSync(base, { recursive: true });
  }
});

threatTest("supervisor-killed", firstReason(NO_KILL_CGROUP), async (t) => {
  const marker = `llmx-redteam-orphan-${crypto.randomUUID()}`;
  // A descendant that left the command's process group, named by its argv so it can be found.
  const orphans = () =>
    [...Deno.readDirSync("/proc")].filter((entry) => {
      try {
        return /^\d+$/.test(entry.name) &&
          Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).includes(marker);
      } catch {
        return false;
      }
    }).map((entry) => Number(entry.name));
  const dir = tempDir();
  try {
    const ready = `${dir}/ready`;
    // The descendant itself says it runs (the ready file), so that none of the steps below
    // can pass because it never started.
    const script = `setsid sh -c 'touch ${ready}; sleep 120; : ${marker}' </dev/null >/dev/null ` +
      `2>&1 & exec sleep 120`;
    const cli = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "-q",
        "--timeout",
        "60s",
        "-s",
        `disk-write-folder=${dir}`,
        "--",
        "sh",
        "-c",
        script,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    while (!exists(ready)) await new Promise((resolve) => setTimeout(resolve, 20));
    await t.step(
      "positive control: killing the supervisor leaves the descendant running",
      async () => {
        cli.kill("SIGKILL");
        await cli.status;
        assert.equal(orphans().length, 1, "the setsid descendant is still there");
      },
    );
    await t.step("the next run kills it", async () => {
      const out = await run(Deno.execPath(), [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "-q",
        "--timeout",
        "30s",
        "--",
        "true",
      ]);
      assert.equal(out.code, 0, out.stderr);
      for (let i = 0; i < 100 && orphans().length > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual(orphans(), []);
    });
    await t.step("a library program that exits kills its runs first", async () => {
      Deno.writeTextFileSync(
        `${dir}/host.ts`,
        `import { spawnSandboxed } from ${
          JSON.stringify(new URL("../../mod.ts", import.meta.url).href)
        };
spawnSandboxed({ command: ["sh", "-c", ${
          JSON.stringify(script)
        }], timeoutMs: 60000, stdout: "null" }, ["disk-write-folder=${dir}"]);
while (!(() => { try { Deno.statSync(${
          JSON.stringify(ready)
        }); return true; } catch { return false; } })()) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
Deno.exit(0);
`,
      );
      Deno.removeSync(ready);
      const out = await run(Deno.execPath(), ["run", "-A", "--quiet", `${dir}/host.ts`]);
      assert.equal(out.code, 0, out.stderr);
      for (let i = 0; i < 100 && orphans().length > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual(orphans(), []);
    });
  } finally {
    for (const pid of orphans()) Deno.kill(pid, "SIGKILL");
    Deno.removeSync(dir, { recursive: true });
  }
});

threatTest("endless-stdin", undefined, async (t) => {
  const cli = (stdin: string, args: string[]) =>
    run("sh", [
      "-c",
      `deno=$0 main=$1; shift; ${stdin} | "$deno" run -A --quiet "$main" -q --json --stdin "$@"`,
      Deno.execPath(),
      MAIN,
      ...args,
    ]);
  await t.step("positive control: the command reads what comes in", async () => {
    const out = await cli("echo hi", ["--", "cat"]);
    assert.equal(JSON.parse(out.stdout).stdout, "hi\n", out.stderr);
  });
  await t.step("an endless stdin: the timeout still ends the run, with its JSON", async () => {
    const out = await cli("yes", ["--timeout", "2s", "--", "sh", "-c", "cat > /dev/null"]);
    const status = JSON.parse(out.stdout);
    assert.equal(status.timedOut, true);
    assert.equal(status.exitCode, 124);
    assert.equal(out.code, 124);
  });
  await t.step("a command that ends first does not wait for stdin to end", async () => {
    // stdin stays open, with nothing written: the CLI must end with the command.
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, "-q", "--json", "--stdin", "--", "true"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    try {
      const { code, stdout } = await child.output();
      assert.equal(code, 0);
      assert.equal(JSON.parse(new TextDecoder().decode(stdout)).exitCode, 0);
    } finally {
      await writer.close().catch(() => {});
    }
  });
});
