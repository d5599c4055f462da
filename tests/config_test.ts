// End to end: the config file (`--config FILE`, else $XDG_CONFIG_HOME/llmx-sandbox/config.json).
// Every run sets XDG_CONFIG_HOME to a folder of the test's own, so that a user's config never
// takes part. Config files live under /var/tmp (or $HOME), outside the folders --full-auto makes
// writable, unless a case puts one inside a writable root on purpose.

import assert from "node:assert/strict";
import { exists, MODES, type Output, runCli, tempDir } from "./_helpers.ts";

/** Folders of one case: `conf` for config files (never writable), `work` as the cwd. */
interface Layout {
  conf: string;
  work: string;
  /** An empty folder used as XDG_CONFIG_HOME: no default config. */
  noXdg: string;
}

const CONFIG_PARENT = (() => {
  for (const dir of ["/var/tmp", Deno.env.get("HOME")]) {
    if (!dir) continue;
    try {
      if (Deno.statSync(dir).isDirectory) return dir;
    } catch {
      // Not here.
    }
  }
  throw new Error("Neither /var/tmp nor $HOME exists for config files");
})();

async function withLayout(fn: (layout: Layout) => Promise<void>): Promise<void> {
  const conf = Deno.realPathSync(
    Deno.makeTempDirSync({ dir: CONFIG_PARENT, prefix: "llmx-test-conf-" }),
  );
  const work = tempDir();
  // Outside the folders --full-auto makes writable: a default config there could be planted.
  const noXdg = Deno.realPathSync(
    Deno.makeTempDirSync({ dir: CONFIG_PARENT, prefix: "llmx-test-xdg-" }),
  );
  try {
    await fn({ conf, work, noXdg });
  } finally {
    for (const dir of [conf, work, noXdg]) Deno.removeSync(dir, { recursive: true });
  }
}

/** Writes a config (an object as JSON, or raw text) and returns its path. */
function writeConfig(path: string, value: unknown): string {
  Deno.writeTextFileSync(path, typeof value === "string" ? value : JSON.stringify(value));
  return path;
}

/** Runs the CLI with XDG_CONFIG_HOME set (by default to an empty folder). */
function cli(
  layout: Layout,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Output> {
  return runCli(args, {
    cwd: options.cwd,
    env: { XDG_CONFIG_HOME: layout.noXdg, ...options.env },
  });
}

interface Plan {
  permissions: string[];
  writableRoots: string[];
  landlock: { enforcement: string };
}

async function explain(
  layout: Layout,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Plan> {
  const out = await cli(layout, ["--explain", ...args, "--", "true"], options);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout);
}

/** Exit 2 with one line naming the file (and the key path), and the command did not run. */
function assertRefused(out: Output, file: string, marker: string, keyPath?: string): void {
  assert.equal(out.code, 2, `exit 2 expected (got ${out.code}): ${out.stderr}`);
  const lines = out.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line expected: ${out.stderr}`);
  assert.match(lines[0], /^llmx-sandbox: /);
  assert.ok(lines[0].includes(file), `the message names ${file}: ${lines[0]}`);
  if (keyPath) assert.ok(lines[0].includes(` at ${keyPath}:`), `names ${keyPath}: ${lines[0]}`);
  assert.equal(exists(marker), false, "nothing ran");
}

Deno.test("--config: permissions in string and object forms, relative to the file's folder", async (t) => {
  await withLayout(async (layout) => {
    const { conf, work } = layout;
    // The same names beside the cwd: resolving against it instead would be visible.
    for (const dir of [conf, work]) {
      Deno.mkdirSync(`${dir}/out-a`);
      Deno.mkdirSync(`${dir}/out-b`);
    }
    const file = writeConfig(`${conf}/config.json`, {
      permissions: [
        { "disk-full-read-access": {} },
        "disk-write-folder=out-a",
        { "disk-write-folder": { folder: "out-b" } },
      ],
    });
    await t.step("the plan has the file's permissions, resolved beside it", async () => {
      const plan = await explain(layout, ["--config", file, "--cwd", work]);
      assert.deepEqual(plan.permissions, [
        "disk-full-read-access",
        `disk-write-folder=${conf}/out-a`,
        `disk-write-folder=${conf}/out-b`,
      ]);
      assert.deepEqual(plan.writableRoots, [`${conf}/out-a`, `${conf}/out-b`]);
    });
    for (const mode of MODES) {
      await t.step(`${mode.name}: the command writes there, and only there`, async () => {
        const tag = mode.flags.length;
        const out = await cli(layout, [
          ...mode.flags,
          "--config",
          file,
          "--cwd",
          work,
          "--",
          "sh",
          "-c",
          `echo a > ${conf}/out-a/f${tag} && echo b > ${conf}/out-b/f${tag} && echo x > mine${tag}`,
        ]);
        assert.equal(Deno.readTextFileSync(`${conf}/out-a/f${tag}`), "a\n", out.stderr);
        assert.equal(Deno.readTextFileSync(`${conf}/out-b/f${tag}`), "b\n");
        // No disk-write-cwd in the file: the cwd stays read-only.
        assert.notEqual(out.code, 0);
        assert.match(out.stderr, /Permission denied/);
        assert.equal(exists(`${work}/mine${tag}`), false);
      });
    }
  });
});

Deno.test("the default config is $XDG_CONFIG_HOME/llmx-sandbox/config.json; missing is fine", async (t) => {
  await withLayout(async (layout) => {
    const xdg = layout.conf;
    Deno.mkdirSync(`${xdg}/llmx-sandbox/out`, { recursive: true });
    writeConfig(`${xdg}/llmx-sandbox/config.json`, {
      permissions: ["disk-full-read-access", "disk-write-folder=out"],
    });
    const target = `${xdg}/llmx-sandbox/out/written`;
    await t.step("positive control: with no config the default policy denies it", async () => {
      const out = await cli(layout, ["--cwd", layout.work, "--", "touch", target]);
      assert.notEqual(out.code, 0, "a missing default config still runs the command");
      assert.match(out.stderr, /Permission denied/);
      assert.equal(exists(target), false);
      const ok = await cli(layout, ["--cwd", layout.work, "--", "true"]);
      assert.equal(ok.code, 0, ok.stderr);
    });
    await t.step("the default config's folder grants it", async () => {
      const out = await cli(layout, ["--cwd", layout.work, "--", "touch", target], {
        env: { XDG_CONFIG_HOME: xdg },
      });
      assert.equal(out.code, 0, out.stderr);
      assert.equal(exists(target), true);
    });
    await t.step({
      name: "without XDG_CONFIG_HOME: $HOME/.config/llmx-sandbox/config.json" +
        (Deno.env.get("XDG_CONFIG_HOME") ? " (skipped: XDG_CONFIG_HOME is set here)" : ""),
      ignore: !!Deno.env.get("XDG_CONFIG_HOME"),
      async fn() {
        const home = `${layout.conf}/home`;
        Deno.mkdirSync(`${home}/.config/llmx-sandbox/out`, { recursive: true });
        writeConfig(`${home}/.config/llmx-sandbox/config.json`, {
          permissions: ["disk-full-read-access", "disk-write-folder=out"],
        });
        // The test's own environment has no XDG_CONFIG_HOME; DENO_DIR keeps Deno's cache.
        const denoDir = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
        const plan = await runCli(["--explain", "--cwd", layout.work, "--", "true"], {
          env: { HOME: home, DENO_DIR: denoDir },
        });
        assert.equal(plan.code, 0, plan.stderr);
        assert.deepEqual(JSON.parse(plan.stdout).writableRoots, [
          `${home}/.config/llmx-sandbox/out`,
        ]);
      },
    });
  });
});

Deno.test("timeoutMs in the file supervises and kills; --timeout beats it", async (t) => {
  await withLayout(async (layout) => {
    await t.step("timeoutMs kills sleep 30: exit 124", async () => {
      const file = writeConfig(`${layout.conf}/short.json`, { timeoutMs: 500 });
      const started = performance.now();
      const out = await cli(layout, ["--config", file, "--", "sleep", "30"]);
      assert.equal(out.code, 124, out.stderr);
      assert.ok(performance.now() - started < 20_000, "killed well before sleep ends");
      assert.match(out.stderr, /timed out after 500 ms/);
    });
    await t.step("--timeout 500 beats timeoutMs 60000", async () => {
      const file = writeConfig(`${layout.conf}/long.json`, { timeoutMs: 60_000 });
      const out = await cli(layout, ["--config", file, "--timeout", "500", "--", "sleep", "30"]);
      assert.equal(out.code, 124, out.stderr);
      assert.match(out.stderr, /timed out after 500 ms/);
    });
    await t.step("--timeout 60000 beats timeoutMs 300", async () => {
      const file = writeConfig(`${layout.conf}/shorter.json`, { timeoutMs: 300 });
      const out = await cli(layout, [
        "--config",
        file,
        "--timeout",
        "60000",
        "--",
        "sh",
        "-c",
        "sleep 1 && echo finished",
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout, "finished\n");
    });
  });
});

Deno.test("env and clearEnv from the file; --env entries come after the file's", async (t) => {
  await withLayout(async (layout) => {
    const file = writeConfig(`${layout.conf}/env.json`, {
      clearEnv: true,
      env: ["FROM_FILE=f", "COPIED", "OVERRIDDEN=file", "NOT_SET_ANYWHERE"],
    });
    const env = { COPIED: "c", DROPPED: "d", OVERRIDDEN: "caller" };
    const lines = (out: Output) => out.stdout.trim().split("\n");
    await t.step("positive control: without the file the caller's variables pass", async () => {
      const out = await cli(layout, ["--", "env"], { env });
      assert.equal(out.code, 0, out.stderr);
      assert.ok(lines(out).includes("DROPPED=d"));
    });
    for (const mode of MODES) {
      await t.step(mode.name, async () => {
        const out = await cli(
          layout,
          [...mode.flags, "--config", file, "--env", "OVERRIDDEN=cli", "--", "env"],
          { env },
        );
        assert.equal(out.code, 0, out.stderr);
        const got = lines(out);
        for (const entry of ["FROM_FILE=f", "COPIED=c", "OVERRIDDEN=cli", "LLMX_SANDBOX=1"]) {
          assert.ok(got.includes(entry), `${entry} in ${got.join(" ")}`);
        }
        assert.ok(!got.some((line) => line.startsWith("DROPPED=")), "clearEnv drops the rest");
        assert.ok(!got.some((line) => line.startsWith("NOT_SET_ANYWHERE=")));
        assert.ok(!got.some((line) => line.startsWith("XDG_CONFIG_HOME=")));
      });
    }
  });
});

Deno.test("requireFull in the file", async (t) => {
  await withLayout(async (layout) => {
    const file = writeConfig(`${layout.conf}/full.json`, { requireFull: true });
    const enforcement = (await explain(layout, [])).landlock.enforcement;
    await t.step({
      name: "accepted, and a fully enforced sandbox runs" +
        (enforcement === "full" ? "" : ` (skipped: this kernel's enforcement is ${enforcement})`),
      ignore: enforcement !== "full",
      async fn() {
        const out = await cli(layout, ["--config", file, "--", "sh", "-c", "echo ran"]);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout, "ran\n");
      },
    });
    await t.step({
      name: "refuses a partially enforced sandbox with 125" +
        (enforcement === "partial"
          ? ""
          : ` (skipped: enforcement here is ${enforcement}; nothing partial to refuse)`),
      ignore: enforcement !== "partial",
      async fn() {
        const marker = `${layout.work}/marker`;
        const args = ["--cwd", layout.work, "-s", "disk-write-cwd", "--", "touch", marker];
        const refused = await cli(layout, ["--config", file, ...args]);
        assert.equal(refused.code, 125, refused.stderr);
        assert.equal(exists(marker), false);
        const control = await cli(layout, args);
        assert.equal(control.code, 0, control.stderr);
        assert.equal(exists(marker), true);
      },
    });
  });
});

Deno.test("a permission list on the command line, or --full-auto, replaces the file's", async (t) => {
  await withLayout(async (layout) => {
    const { conf, work } = layout;
    Deno.mkdirSync(`${conf}/out`);
    const file = writeConfig(`${conf}/config.json`, {
      permissions: ["disk-full-read-access", "disk-write-folder=out"],
    });
    await t.step("positive control: alone, the file's list applies", async () => {
      const plan = await explain(layout, ["--config", file, "--cwd", work]);
      assert.deepEqual(plan.writableRoots, [`${conf}/out`]);
    });
    await t.step("-s replaces it", async () => {
      const plan = await explain(layout, ["--config", file, "--cwd", work, "-s", "disk-write-cwd"]);
      // Full read is always there on the command line; the file's folder is gone.
      assert.deepEqual(plan.permissions, ["disk-full-read-access", "disk-write-cwd"]);
      assert.deepEqual(plan.writableRoots, [work]);
      const out = await cli(layout, [
        "--config",
        file,
        "--cwd",
        work,
        "-s",
        "disk-write-cwd",
        "--",
        "sh",
        "-c",
        `touch mine && touch ${conf}/out/theirs`,
      ]);
      assert.equal(exists(`${work}/mine`), true, out.stderr);
      assert.notEqual(out.code, 0);
      assert.equal(exists(`${conf}/out/theirs`), false);
    });
    await t.step("--full-auto replaces it", async () => {
      const plan = await explain(layout, ["--config", file, "--cwd", work, "--full-auto"]);
      assert.ok(plan.writableRoots.includes(work));
      assert.ok(!plan.writableRoots.includes(`${conf}/out`), plan.writableRoots.join());
      assert.ok(!plan.permissions.some((p) => p.startsWith("disk-write-folder=")));
    });
  });
});

Deno.test("command-line paths are relative to --cwd, else to the process cwd", async (t) => {
  await withLayout(async (layout) => {
    const { work, conf } = layout;
    Deno.mkdirSync(`${work}/out`);
    Deno.mkdirSync(`${conf}/out`);
    await t.step("against --cwd (the process cwd has its own out/)", async () => {
      const plan = await explain(
        layout,
        ["--cwd", work, "-s", "disk-full-read-access", "-s", "disk-write-folder=out"],
        { cwd: conf },
      );
      assert.deepEqual(plan.writableRoots, [`${work}/out`]);
    });
    await t.step("against the process cwd without --cwd", async () => {
      const plan = await explain(
        layout,
        ["-s", "disk-full-read-access", "-s", "disk-write-folder=out"],
        { cwd: conf },
      );
      assert.deepEqual(plan.writableRoots, [`${conf}/out`]);
    });
    await t.step("a file's relative paths ignore both", async () => {
      const file = writeConfig(`${conf}/config.json`, {
        permissions: ["disk-full-read-access", "disk-write-folder=out"],
      });
      const plan = await explain(layout, ["--config", file, "--cwd", work], { cwd: work });
      assert.deepEqual(plan.writableRoots, [`${conf}/out`]);
    });
  });
});

Deno.test("an invalid config exits 2 with one line naming the file and the key path; nothing runs", async (t) => {
  await withLayout(async (layout) => {
    const marker = `${layout.work}/marker`;
    const command = [
      "-s",
      "disk-full-read-access",
      "-s",
      `disk-write-folder=${layout.work}`,
      "--",
      "touch",
      marker,
    ];
    await t.step("positive control: a valid config runs the command", async () => {
      const file = writeConfig(`${layout.conf}/valid.json`, { permissions: [] });
      const out = await cli(layout, ["--config", file, ...command]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(exists(marker), true);
      Deno.removeSync(marker);
    });
    const cases: { name: string; config: unknown; keyPath?: string }[] = [
      { name: "an unknown key", config: { permisions: ["disk-write-cwd"] }, keyPath: "permisions" },
      {
        name: "an invalid permission",
        config: { permissions: ["disk-write-cwd", "disk-write-everything"] },
        keyPath: "permissions[1]",
      },
      {
        name: "a malformed object permission",
        config: { permissions: [{ "disk-write-folder": { path: "/x" } }] },
        keyPath: "permissions[0]",
      },
      {
        name: "permissions not a list",
        config: { permissions: "disk-write-cwd" },
        keyPath: "permissions",
      },
      { name: "timeoutMs a string", config: { timeoutMs: "500" }, keyPath: "timeoutMs" },
      { name: "timeoutMs zero", config: { timeoutMs: 0 }, keyPath: "timeoutMs" },
      { name: "an env entry without a key", config: { env: ["A=1", "=x"] }, keyPath: "env[1]" },
      { name: "env not a list", config: { env: { A: "1" } }, keyPath: "env" },
      { name: "clearEnv a string", config: { clearEnv: "yes" }, keyPath: "clearEnv" },
      { name: "requireFull a number", config: { requireFull: 1 }, keyPath: "requireFull" },
      { name: "not JSON", config: '{"permissions": [' },
      { name: "a JSON array", config: "[]" },
      { name: "empty", config: "" },
    ];
    for (const [index, { name, config, keyPath }] of cases.entries()) {
      await t.step(name, async () => {
        const file = writeConfig(`${layout.conf}/invalid-${index}.json`, config);
        const out = await cli(layout, ["--config", file, ...command]);
        assertRefused(out, file, marker, keyPath);
      });
    }
    await t.step("an invalid default config too", async () => {
      const xdg = `${layout.conf}/xdg`;
      Deno.mkdirSync(`${xdg}/llmx-sandbox`, { recursive: true });
      const file = writeConfig(`${xdg}/llmx-sandbox/config.json`, { timeoutMs: -1 });
      const out = await cli(layout, command, { env: { XDG_CONFIG_HOME: xdg } });
      assertRefused(out, file, marker, "timeoutMs");
    });
    await t.step("a missing explicit --config", async () => {
      const file = `${layout.conf}/does-not-exist.json`;
      const out = await cli(layout, ["--config", file, ...command]);
      assertRefused(out, file, marker);
    });
  });
});

Deno.test("a config inside a writable root of the policy it produces is refused", async (t) => {
  await withLayout(async (layout) => {
    const { conf, work } = layout;
    const marker = `${work}/marker`;
    const config = { permissions: ["disk-full-read-access", "disk-write-cwd"] };
    const run = (file: string, extra: string[] = [], env?: Record<string, string>) =>
      cli(layout, [
        ...extra,
        ...(file ? ["--config", file] : []),
        "--cwd",
        work,
        "--",
        "touch",
        marker,
      ], {
        env,
      });
    for (const mode of MODES) {
      await t.step(
        `${mode.name}: positive control: the config in a read-only folder runs`,
        async () => {
          const out = await run(writeConfig(`${conf}/config.json`, config), mode.flags.slice());
          assert.equal(out.code, 0, out.stderr);
          assert.equal(exists(marker), true);
          Deno.removeSync(marker);
        },
      );
      await t.step(`${mode.name}: the same config inside the cwd it makes writable`, async () => {
        const file = writeConfig(`${work}/config.json`, config);
        assertRefused(await run(file, mode.flags.slice()), file, marker);
        Deno.removeSync(file);
      });
    }
    await t.step("the command line's permissions make its folder writable", async () => {
      const file = writeConfig(`${work}/empty.json`, {});
      assertRefused(await run(file, ["-s", "disk-write-cwd"]), file, marker);
      Deno.removeSync(file);
    });
    await t.step("a default config not made yet, where the command could create it", async () => {
      const xdg = `${work}/empty-xdg`;
      Deno.mkdirSync(xdg);
      const file = `${xdg}/llmx-sandbox/config.json`;
      assertRefused(
        await run("", ["-s", "disk-write-cwd"], { XDG_CONFIG_HOME: xdg }),
        file,
        marker,
      );
      assert.equal(exists(file), false);
    });
    await t.step("a default config inside a writable root", async () => {
      const xdg = `${work}/xdg`;
      Deno.mkdirSync(`${xdg}/llmx-sandbox`, { recursive: true });
      const file = writeConfig(`${xdg}/llmx-sandbox/config.json`, config);
      assertRefused(await run("", [], { XDG_CONFIG_HOME: xdg }), file, marker);
      // Positive control: the same default config outside runs.
      const outside = `${conf}/xdg`;
      Deno.mkdirSync(`${outside}/llmx-sandbox`, { recursive: true });
      writeConfig(`${outside}/llmx-sandbox/config.json`, config);
      const out = await run("", [], { XDG_CONFIG_HOME: outside });
      assert.equal(out.code, 0, out.stderr);
      assert.equal(exists(marker), true);
    });
  });
});

Deno.test({
  name: "a config reached through a symlink inside a writable root is refused",
  async fn() {
    await withLayout(async (layout) => {
      const { conf, work } = layout;
      const marker = `${work}/marker`;
      const real = writeConfig(`${conf}/config.json`, {
        permissions: ["disk-full-read-access", "disk-write-cwd"],
      });
      const link = `${work}/config.json`;
      Deno.symlinkSync(real, link);
      // What the command could do from inside: replace the link by a config of its own.
      const out = await cli(layout, [
        "--config",
        link,
        "--cwd",
        work,
        "--",
        "sh",
        "-c",
        `touch ${marker}; rm config.json && echo '{"permissions": ["network-full-access"]}' > config.json`,
      ]);
      assert.equal(out.code, 2, `refused expected: ${out.stderr}`);
      assert.equal(exists(marker), false, "nothing ran");
      assert.equal(Deno.lstatSync(link).isSymlink, true, "the link was not replaced");
    });
  },
});
