// End to end: the supervisor in a hostile environment. Whatever the caller's TMPDIR, HOME, PATH,
// working folder, standard streams and environment look like, and whatever the command does to
// its own streams or to itself, the CLI (in place, supervised, --json) and the library either run
// the command normally or refuse with one line (`llmx-sandbox: ...`, exit 2 or 125): never an
// uncaught exception, a stack trace or a hang; and many runs in a row leak nothing.
// Each case has its positive control: the same run in a sane environment works. Only processes,
// folders and cgroups these tests make are touched.

import assert from "node:assert/strict";
import { ownCgroupDir } from "../exec/cgroup.ts";
import { type ExecResult, execSandboxed, type PolicyInput, SandboxError } from "../mod.ts";
import {
  exists,
  launcher,
  MAIN,
  NOT_ROOT,
  type Output,
  RESTRICTED_STDERR,
  run,
  skipReason,
  tempDir,
  which,
} from "./_helpers.ts";

const ROOT = Deno.uid() === 0;
const READ_ONLY: PolicyInput = ["disk-full-read-access"];

/** The CLI's ways to run a command: in place, supervised, and supervised with --json. */
const CLI_MODES: readonly { name: string; flags: readonly string[]; json: boolean }[] = [
  { name: "in place", flags: [], json: false },
  { name: "supervised", flags: ["--timeout", "60000"], json: false },
  { name: "--json", flags: ["--json"], json: true },
];
const SUPERVISED_MODES = CLI_MODES.filter((mode) => mode.flags.length > 0);

/** How the CLI is started for a case: its folder, environment and closed standard streams. */
interface CliOptions {
  /** The folder the CLI starts in. @default this process's */
  cwd?: string;
  /** Variables set on top of this process's environment. */
  env?: Record<string, string>;
  /** Variables left out of it. */
  unset?: readonly string[];
  /** Standard streams (0, 1, 2) closed when the CLI starts, as `<&-` in a shell. */
  close?: readonly number[];
  /** A shell command run in the CLI's folder right before it starts (`sh -c`). */
  before?: string;
  /** Through the installed command's launcher, `bin/llmx-sandbox`, rather than `deno run`. */
  viaLauncher?: boolean;
}

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Runs the CLI (`deno run -A main.ts ARGS`) with exactly the environment asked for. */
async function cli(args: readonly string[], options: CliOptions = {}): Promise<Output> {
  // NO_COLOR: Deno's own errors, if any, start with a plain "error: ".
  const env: Record<string, string> = { ...Deno.env.toObject(), NO_COLOR: "1", ...options.env };
  // Deno marks its own environment so when it put a node shim on PATH: not the caller's.
  delete env.DENO_NODE_SHIM_ACTIVE;
  for (const key of options.unset ?? []) delete env[key];
  const deno = options.viaLauncher
    ? [launcher(), ...args]
    : [Deno.execPath(), "run", "--allow-all", "--quiet", MAIN, ...args];
  const closing = (options.close ?? []).map((fd) => `${fd}>&-`).join(" ");
  const wrapped = options.before !== undefined || closing !== "";
  const child = new Deno.Command(wrapped ? "/bin/sh" : deno[0], {
    args: wrapped
      ? ["-c", `${options.before ?? ":"} && exec "$@" ${closing}`, "sh", ...deno]
      : deno.slice(1),
    cwd: options.cwd,
    clearEnv: true,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const { code, signal, stdout, stderr } = await child.output();
    // The launcher is a shell script: a shell started in a deleted folder says so first.
    const shell = options.viaLauncher ? /^(sh|dash|bash): .*getcwd.*\n/ : /^$/;
    return { code, signal, stdout: decode(stdout), stderr: decode(stderr).replace(shell, "") };
  } finally {
    clearTimeout(timer);
  }
}

/** What the command itself printed and how it ended, from the CLI's output in any mode. */
function commandResult(
  mode: { json: boolean },
  out: Output,
): { exitCode: number; stdout: string; stderr: string } {
  if (!mode.json) return { exitCode: out.code, stdout: out.stdout, stderr: "" };
  let result;
  try {
    result = JSON.parse(out.stdout);
  } catch {
    assert.fail(`--json printed no JSON result: ${JSON.stringify(out)}`);
  }
  assert.equal(result.exitCode, out.code, "the CLI exits with the command's code");
  return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
}

/** The lines on stderr that are not the root warning every restricted run prints as root. */
function ownStderrLines(stderr: string): string[] {
  const rest = stderr.startsWith(RESTRICTED_STDERR)
    ? stderr.slice(RESTRICTED_STDERR.length)
    : stderr;
  return rest.split("\n").filter((line) => line !== "");
}

/** Nothing on stderr looks like a crash of the CLI or of Deno under it. */
function assertNoCrash(out: Output): void {
  assert.doesNotMatch(
    out.stderr,
    /Uncaught|Stack backtrace|^\s+at |^error: /m,
    `a crash, not a normal run or a one-line refusal:\n${out.stderr}`,
  );
}

/** A normal run: the command's output and exit code, at most one warning line from the CLI. */
function assertRan(
  mode: { json: boolean },
  out: Output,
  expected: { stdout: string | RegExp; code?: number },
): void {
  assertNoCrash(out);
  const lines = ownStderrLines(out.stderr);
  assert.ok(
    lines.length === 0 || (lines.length === 1 && lines[0].startsWith("llmx-sandbox: warning: ")),
    `expected a normal run (at most one warning line), got code ${out.code}:\n${out.stderr}`,
  );
  const result = commandResult(mode, out);
  assert.equal(result.exitCode, expected.code ?? 0, JSON.stringify(out));
  if (typeof expected.stdout === "string") assert.equal(result.stdout, expected.stdout);
  else assert.match(result.stdout, expected.stdout);
}

/** A refusal: exit 2 or 125, one line `llmx-sandbox: ...` naming what is wrong, nothing run. */
function assertRefused(out: Output, codes: readonly number[], names: RegExp): void {
  assertNoCrash(out);
  assert.ok(codes.includes(out.code), `exit ${out.code}, not one of ${codes}: ${out.stderr}`);
  const lines = ownStderrLines(out.stderr);
  assert.equal(lines.length, 1, `one line, got:\n${out.stderr}`);
  assert.match(lines[0], /^llmx-sandbox: /);
  assert.match(lines[0], names);
}

/** The program was not found: 127 and the shell's words, from the CLI in any mode. */
function assertNotFound(mode: { json: boolean }, out: Output, program: string): void {
  assertNoCrash(out);
  const result = commandResult(mode, out);
  assert.equal(result.exitCode, 127, JSON.stringify(out));
  assert.match(
    mode.json ? result.stderr : out.stderr,
    new RegExp(`: ${program}: command not found`),
  );
}

/** Either of the two acceptable outcomes for an input that may or may not be usable. */
function assertRanOrRefused(mode: { json: boolean }, out: Output, stdout: string): void {
  assertNoCrash(out);
  if (out.code === 2 || out.code === 125) {
    assertRefused(out, [2, 125], /./);
  } else {
    assertRan(mode, out, { stdout });
  }
}

/** Runs an assertion, prefixing its message with where it failed. */
function rethrow(where: string, check: () => void): void {
  try {
    check();
  } catch (error) {
    if (error instanceof Error) error.message = where + error.message;
    throw error;
  }
}

/** Runs `body` with a fresh temporary folder, removed afterwards (made writable first). */
async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir();
  try {
    await body(dir);
  } finally {
    await run("chmod", ["-R", "u+rwx", dir]);
    Deno.removeSync(dir, { recursive: true });
  }
}

/** The kill cgroups left behind by the supervisor with this pid (named after it). */
function cgroupsOf(pid: number): string[] {
  const dir = ownCgroupDir();
  if (dir === undefined) return [];
  try {
    return [...Deno.readDirSync(dir)]
      .filter((entry) => entry.isDirectory && entry.name.startsWith(`llmx-sandbox-${pid}-`))
      .map((entry) => `${dir}/${entry.name}`);
  } catch {
    return [];
  }
}

/** Removes the cgroups a failed case left, first killing what still runs in them. */
async function removeCgroups(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    try {
      Deno.writeTextFileSync(`${path}/cgroup.kill`, "1");
    } catch {
      // Gone meanwhile.
    }
    // A killed process leaves the cgroup once reaped; rmdir fails (EBUSY) until then.
    for (let attempt = 0; attempt < 100 && exists(path); attempt++) {
      try {
        Deno.removeSync(path);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }
}

/**
 * Runs `body`, then removes those of `paths` that appeared meanwhile: what Deno made for an odd
 * HOME (its cache in `/.cache` for HOME=/, `/NAME` for a relative HOME resolved in /).
 * @returns The paths that appeared.
 */
async function appearing(paths: readonly string[], body: () => Promise<void>): Promise<string[]> {
  const before = new Set(paths.filter(exists));
  const appeared: string[] = [];
  try {
    await body();
  } finally {
    for (const path of paths) {
      if (before.has(path) || !exists(path)) continue;
      appeared.push(path);
      Deno.removeSync(path, { recursive: true });
    }
  }
  return appeared;
}

/** The pids of this process's children that are zombies. */
function zombieChildren(): number[] {
  const zombies: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(ppid) === Deno.pid && state === "Z") zombies.push(Number(entry.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return zombies;
}

function openDescriptors(): string[] {
  return [...Deno.readDirSync("/proc/self/fd")].map((entry) => {
    try {
      return `${entry.name} -> ${Deno.readLinkSync(`/proc/self/fd/${entry.name}`)}`;
    } catch {
      return entry.name;
    }
  }).sort();
}

// ---------------------------------------------------------------------------------------------
// TMPDIR

Deno.test("an unusable TMPDIR never keeps a command from running, in any mode or policy", async (t) => {
  await withTempDir(async (dir) => {
    const work = `${dir}/work`;
    Deno.mkdirSync(work);
    Deno.writeTextFileSync(`${dir}/file`, "");
    const readOnly = `${dir}/read-only`;
    Deno.mkdirSync(readOnly, { mode: 0o555 });
    Deno.chmodSync(readOnly, 0o555);
    Deno.mkdirSync(`${dir}/closed/tmp`, { recursive: true });
    Deno.chmodSync(`${dir}/closed`, 0o000);
    const values: [string, string][] = [
      ["empty", ""],
      ["missing", `${dir}/nonexistent`],
      ["a file", `${dir}/file`],
      ["a path through a file", `${dir}/file/tmp`],
      ["relative", "relative-tmp"],
      // Root writes and enters any folder whatever its mode: there, the path through a file
      // stands for these.
      ...(ROOT ? [] : [
        ["a folder the user cannot write", readOnly],
        ["inside a folder the user cannot enter", `${dir}/closed/tmp`],
      ] as [string, string][]),
    ];
    const policies: [string, string[]][] = [
      ["default", []],
      ["--full-auto", ["--full-auto"]],
      ["-s disk-write-platform-user-temp-folder", ["-s", "disk-write-platform-user-temp-folder"]],
    ];
    await t.step("positive control: a sane TMPDIR is granted by --full-auto", async () => {
      const sane = `${dir}/sane`;
      Deno.mkdirSync(sane);
      for (const mode of CLI_MODES) {
        const out = await cli(
          [
            ...mode.flags,
            "--full-auto",
            "--",
            "sh",
            "-c",
            'echo ok > "$TMPDIR/f" && cat "$TMPDIR/f"',
          ],
          { cwd: work, env: { TMPDIR: sane } },
        );
        assertRan(mode, out, { stdout: "ok\n" });
      }
    });
    for (const [what, value] of values) {
      await t.step(`TMPDIR ${what} (${JSON.stringify(value)})`, async () => {
        const runs = CLI_MODES.flatMap((mode) =>
          policies.map(async ([policy, flags]) => {
            const out = await cli([...mode.flags, ...flags, "--", "sh", "-c", "echo ok"], {
              cwd: work,
              env: { TMPDIR: value },
            });
            rethrow(`${mode.name}, ${policy}: `, () => assertRan(mode, out, { stdout: "ok\n" }));
          })
        );
        await Promise.all(runs);
      });
    }
    await t.step("library, disk-write-platform-user-temp-folder", async () => {
      const saved = Deno.env.get("TMPDIR");
      try {
        for (const [what, value] of values) {
          Deno.env.set("TMPDIR", value);
          const result = await execSandboxed(
            { command: ["sh", "-c", "echo ok"], cwd: work },
            ["disk-full-read-access", "disk-write-platform-user-temp-folder"],
          ).catch((error) => assert.fail(`TMPDIR ${what}: ${error}`));
          assert.equal(result.exitCode, 0, `TMPDIR ${what}: ${result.stderr}`);
          assert.equal(result.stdout, "ok\n");
        }
      } finally {
        if (saved === undefined) Deno.env.delete("TMPDIR");
        else Deno.env.set("TMPDIR", saved);
      }
    });
  });
});

Deno.test("the supervisor keeps nothing of its own in TMPDIR", async () => {
  await withTempDir(async (dir) => {
    const tmp = `${dir}/tmp`;
    Deno.mkdirSync(tmp);
    for (const mode of SUPERVISED_MODES) {
      const out = await cli([...mode.flags, "--cwd", "/", "--", "true"], { env: { TMPDIR: tmp } });
      assertRan(mode, out, { stdout: "" });
    }
    // The library's runs are counted in the test of many runs below.
    assert.deepEqual([...Deno.readDirSync(tmp)].map((entry) => entry.name), []);
  });
});

// ---------------------------------------------------------------------------------------------
// HOME

Deno.test("an odd HOME changes nothing for a policy without ~, and ~ in a folder needs a usable HOME", async (t) => {
  await withTempDir(async (dir) => {
    const work = `${dir}/work`;
    Deno.mkdirSync(work);
    const file = `${dir}/file`;
    Deno.writeTextFileSync(file, "");
    // A relative HOME must not make the supervisor's child (which starts in /) create `/NAME`.
    const relative = `llmx-relative-home-${Deno.pid}`;
    // Each HOME with what the refusal of `disk-write-folder=~/x` names, and whether a policy
    // without ~ may be refused too (in one line): a HOME inside a folder the caller cannot
    // enter hides whether a config file is there, and an unreadable config is refused.
    const homes: { what: string; options: CliOptions; names: RegExp; mayRefuse?: true }[] = [
      { what: "unset", options: { unset: ["HOME"] }, names: /\$HOME.*not set/ },
      { what: "/", options: { env: { HOME: "/" } }, names: /~\/x/ },
      { what: "relative", options: { env: { HOME: relative } }, names: /\$HOME.*not absolute/ },
      { what: "missing", options: { env: { HOME: `${dir}/nonexistent` } }, names: /~\/x/ },
      { what: "a file", options: { env: { HOME: file } }, names: /~\/x/ },
      // Root enters any folder: only a user can be kept out of HOME.
      ...(ROOT ? [] : [{
        what: "inside a folder the user cannot enter",
        options: { env: { HOME: `${dir}/closed/home` } },
        names: /closed\/home/,
        mayRefuse: true as const,
      }]),
    ];
    Deno.mkdirSync(`${dir}/closed/home`, { recursive: true });
    Deno.chmodSync(`${dir}/closed`, 0o000);
    await t.step("positive control: ~/x in a sane HOME is writable", async () => {
      const home = `${dir}/home`;
      Deno.mkdirSync(`${home}/x`, { recursive: true });
      for (const mode of CLI_MODES) {
        const out = await cli(
          [...mode.flags, "-s", "disk-write-folder=~/x", "--", "sh", "-c", "echo ok > ~/x/f"],
          { cwd: work, env: { HOME: home } },
        );
        assertRan(mode, out, { stdout: "" });
        assert.equal(Deno.readTextFileSync(`${home}/x/f`), "ok\n");
      }
    });
    for (const { what, options, names, mayRefuse } of homes) {
      // Deno 2.9 itself dies before any code of ours runs: "Error loading .npmrc at
      // $HOME/.npmrc ... Not a directory". (The library's supervised child is started with a
      // usable HOME: see execSandboxed()'s test of this process's own HOME.)
      const denoCannotStart = what === "a file"
        ? "Deno itself cannot start with HOME a file (it reads $HOME/.npmrc)"
        : undefined;
      await t.step({
        name: skipReason(`HOME ${what}`, denoCannotStart),
        ignore: denoCannotStart !== undefined,
        fn: async () => {
          const appeared = await appearing(["/.cache", `/${relative}`], async () => {
            for (const mode of CLI_MODES) {
              const where = (policy: string) => `${mode.name}, ${policy}: `;
              const plain = await cli([...mode.flags, "--", "sh", "-c", "echo ok"], {
                ...options,
                cwd: work,
              });
              rethrow(
                where("default"),
                () =>
                  mayRefuse
                    ? assertRanOrRefused(mode, plain, "ok\n")
                    : assertRan(mode, plain, { stdout: "ok\n" }),
              );
              const auto = await cli([...mode.flags, "--full-auto", "--", "sh", "-c", "echo ok"], {
                ...options,
                cwd: work,
              });
              rethrow(where("--full-auto"), () => assertRanOrRefused(mode, auto, "ok\n"));
              const tilde = ["-s", "disk-write-folder=~/x", "--", "true"];
              const refused = await cli([...mode.flags, ...tilde], { ...options, cwd: work });
              rethrow(where("disk-write-folder=~/x"), () => assertRefused(refused, [2], names));
            }
          });
          // Deno itself keeps its cache in $HOME/.cache, so HOME=/ may make /.cache (removed).
          assert.ok(
            !appeared.includes(`/${relative}`),
            `a run with HOME=${relative} made /${relative}`,
          );
        },
      });
    }
  });
});

Deno.test("execSandboxed() runs the command whatever this process's own HOME is", async (t) => {
  await withTempDir(async (dir) => {
    const file = `${dir}/file`;
    Deno.writeTextFileSync(file, "");
    const relative = `llmx-relative-home-lib-${Deno.pid}`;
    const saved = Deno.env.get("HOME");
    const cases: [string, string | undefined][] = [
      ["the caller's (positive control)", saved],
      ["unset", undefined],
      ["/", "/"],
      ["relative", relative],
      ["missing", `${dir}/nonexistent`],
      ["a file", file],
    ];
    for (const [what, home] of cases) {
      await t.step(`HOME ${what}`, async () => {
        const appeared = await appearing(["/.cache", `/${relative}`], async () => {
          try {
            if (home === undefined) Deno.env.delete("HOME");
            else Deno.env.set("HOME", home);
            const result = await execSandboxed(
              { command: ["sh", "-c", "echo ok"], cwd: dir, env: { PATH: "/usr/bin:/bin" } },
              READ_ONLY,
            );
            assert.equal(result.exitCode, 0, result.stderr);
            assert.equal(result.stdout, "ok\n");
          } finally {
            if (saved === undefined) Deno.env.delete("HOME");
            else Deno.env.set("HOME", saved);
          }
        });
        assert.ok(
          !appeared.includes(`/${relative}`),
          `a run with HOME=${relative} made /${relative}`,
        );
      });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// PATH

Deno.test("the command is found through the caller's PATH exactly as given, however odd", async (t) => {
  await withTempDir(async (dir) => {
    // `here` in the working folder, `there` in ./bin: found by name only through "" and "bin".
    Deno.mkdirSync(`${dir}/bin`);
    for (const [path, word] of [[`${dir}/here`, "here"], [`${dir}/bin/there`, "there"]]) {
      Deno.writeTextFileSync(path, `#!/bin/sh\necho ${word}\n`, { mode: 0o755 });
    }
    Deno.writeTextFileSync(`${dir}/file`, "");
    // Each command with what it prints, or null: "command not found" (127).
    const cases: [string, string | undefined, [string[], string | null][]][] = [
      ["positive control (/usr/bin:/bin)", "/usr/bin:/bin", [
        [["echo", "x"], "x\n"],
        [["here"], null],
      ]],
      ["unset (the default path)", undefined, [[["echo", "x"], "x\n"]]],
      ["empty (the working folder)", "", [[["here"], "here\n"], [["echo", "x"], null]]],
      ["relative (bin)", "bin", [[["there"], "there\n"], [["echo", "x"], null]]],
      ["with an empty entry", ":/usr/bin:/bin", [[["here"], "here\n"], [["echo", "x"], "x\n"]]],
      ["with a file entry", `${dir}/file:/usr/bin:/bin`, [[["echo", "x"], "x\n"]]],
    ];
    for (const [what, path, commands] of cases) {
      await t.step(`PATH ${what}`, async () => {
        const options: CliOptions = path === undefined
          ? { cwd: dir, unset: ["PATH"] }
          : { cwd: dir, env: { PATH: path } };
        for (const mode of CLI_MODES) {
          for (const [command, stdout] of commands) {
            const out = await cli([...mode.flags, "--", ...command], options);
            rethrow(
              `${mode.name}, ${command.join(" ")}: `,
              () =>
                stdout === null
                  ? assertNotFound(mode, out, command[0])
                  : assertRan(mode, out, { stdout }),
            );
          }
          // By path, PATH plays no part.
          const byPath: [string[], string][] = [[["/bin/echo", "x"], "x\n"], [
            ["./here"],
            "here\n",
          ]];
          for (const [command, stdout] of byPath) {
            const out = await cli([...mode.flags, "--", ...command], options);
            assertRan(mode, out, { stdout });
          }
          // The command's PATH is the caller's, not one the runtime under the CLI made up.
          const env = await cli([...mode.flags, "--", "/usr/bin/env"], options);
          const seen = commandResult(mode, env).stdout.split("\n");
          assert.deepEqual(
            seen.filter((line) => line.startsWith("PATH=")),
            path === undefined ? [] : [`PATH=${path}`],
            `${mode.name}: the command's PATH`,
          );
          assert.deepEqual(seen.filter((line) => line.startsWith("DENO_NODE_SHIM")), []);
        }
      });
    }
  });
});

Deno.test("execSandboxed() searches the PATH it is given, however odd", async () => {
  await withTempDir(async (dir) => {
    Deno.mkdirSync(`${dir}/bin`);
    Deno.writeTextFileSync(`${dir}/here`, "#!/bin/sh\necho here\n", { mode: 0o755 });
    Deno.writeTextFileSync(`${dir}/bin/there`, "#!/bin/sh\necho there\n", { mode: 0o755 });
    Deno.writeTextFileSync(`${dir}/file`, "");
    const cases: [Record<string, string>, string, string, number][] = [
      [{ PATH: "/usr/bin:/bin" }, "echo", "x\n", 0],
      [{}, "echo", "x\n", 0],
      [{ PATH: "" }, "here", "here\n", 0],
      [{ PATH: "" }, "echo", "", 127],
      [{ PATH: "bin" }, "there", "there\n", 0],
      [{ PATH: ":/usr/bin:/bin" }, "here", "here\n", 0],
      [{ PATH: `${dir}/file:/usr/bin:/bin` }, "echo", "x\n", 0],
      [{ PATH: `${dir}/file` }, "echo", "", 127],
    ];
    for (const [env, program, stdout, code] of cases) {
      const result = await execSandboxed(
        { command: [program, ...(program === "echo" ? ["x"] : [])], cwd: dir, env },
        READ_ONLY,
      );
      const what = `${program} with ${JSON.stringify(env)}`;
      assert.equal(result.exitCode, code, `${what}: ${result.stderr}`);
      assert.equal(result.stdout, stdout, what);
      if (code === 127) assert.match(result.stderr, /^llmx-sandbox: echo: command not found\n$/);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The working folder

Deno.test("a working folder deleted before the CLI starts gives a normal run or one line", async (t) => {
  await withTempDir(async (dir) => {
    // The CLI starts in a folder that its shell removed right before.
    const gone = { cwd: dir, before: "mkdir gone && cd gone && rmdir ../gone" };
    await t.step("positive control: the same start in a folder that stays", async () => {
      const out = await cli(["--", "pwd"], { cwd: dir, before: "mkdir stays && cd stays" });
      assertRan({ json: false }, out, { stdout: `${dir}/stays\n` });
    });
    // Deno itself cannot start in a deleted folder ("could not read current working directory",
    // exit 1) before any code of ours runs: the installed command's launcher starts it in / and
    // tells the CLI.
    await t.step("deno run main.ts directly: Deno's own one-line error", async () => {
      const out = await cli(["--cwd", "/", "--", "pwd"], gone);
      assert.equal(out.code, 1);
      assert.match(out.stderr, /^error: could not read current working directory/m);
    });
    for (const mode of CLI_MODES) {
      await t.step(`${mode.name}: no --cwd`, async () => {
        const out = await cli([...mode.flags, "--", "pwd"], { ...gone, viaLauncher: true });
        assertRefused(out, [2], /gone|working folder|current folder/i);
      });
      await t.step(`${mode.name}: --cwd /`, async () => {
        const out = await cli([...mode.flags, "--cwd", "/", "--", "pwd"], {
          ...gone,
          viaLauncher: true,
        });
        assertRan(mode, out, { stdout: "/\n" });
      });
      await t.step(`${mode.name}: --cwd of a deleted folder`, async () => {
        Deno.mkdirSync(`${dir}/removed`);
        Deno.removeSync(`${dir}/removed`);
        const out = await cli([...mode.flags, "--cwd", `${dir}/removed`, "--", "pwd"]);
        assertRefused(out, [2], /removed/);
      });
    }
  });
});

Deno.test("execSandboxed() with this process's working folder deleted runs or throws a SandboxError", async () => {
  const saved = Deno.cwd();
  await withTempDir(async (dir) => {
    Deno.mkdirSync(`${dir}/gone`);
    Deno.chdir(`${dir}/gone`);
    Deno.removeSync(`${dir}/gone`);
    try {
      const ran = await execSandboxed({ command: ["pwd"], cwd: dir }, READ_ONLY)
        .catch((error: Error) => error);
      assert.ok(!(ran instanceof Error), `an absolute cwd still runs, but: ${ran}`);
      assert.equal(ran.stdout, `${dir}\n`);
      await assert.rejects(
        () => execSandboxed({ command: ["pwd"] }, READ_ONLY),
        (error: unknown) => error instanceof SandboxError && error.kind === "missing-path",
        "no cwd: the deleted working folder is a missing path",
      );
    } finally {
      Deno.chdir(saved);
    }
  });
});

Deno.test("a working folder in /proc or behind a symlink runs normally", async (t) => {
  await withTempDir(async (dir) => {
    Deno.mkdirSync(`${dir}/real`);
    Deno.symlinkSync(`${dir}/real`, `${dir}/link`);
    for (const mode of CLI_MODES) {
      await t.step(mode.name, async () => {
        const proc = await cli([...mode.flags, "--cwd", "/proc/self", "--", "pwd"]);
        assertRan(mode, proc, { stdout: /^\/proc\/\d+\n$/ });
        const fd = await cli([...mode.flags, "--cwd", "/proc/self/fd", "--", "true"]);
        assertRanOrRefused(mode, fd, "");
        const link = await cli([...mode.flags, "--cwd", `${dir}/link`, "--", "pwd"]);
        assertRan(mode, link, { stdout: `${dir}/real\n` });
      });
    }
  });
});

Deno.test({
  name: skipReason(
    "--run-as a user who cannot enter the working folder: 125, one line naming user and folder",
    NOT_ROOT,
  ),
  ignore: NOT_ROOT !== undefined,
}, async (t) => {
  await withTempDir(async (dir) => {
    Deno.chmodSync(dir, 0o755);
    const open = `${dir}/open`;
    const closed = `${dir}/closed`;
    Deno.mkdirSync(open, { mode: 0o755 });
    Deno.mkdirSync(`${closed}/inner`, { recursive: true });
    Deno.chmodSync(open, 0o755);
    Deno.chmodSync(closed, 0o700);
    for (const mode of CLI_MODES) {
      await t.step(`${mode.name}: positive control, an open folder`, async () => {
        const out = await cli([...mode.flags, "--run-as", "nobody", "--cwd", open, "--", "pwd"]);
        assertRan(mode, out, { stdout: `${open}\n` });
      });
      for (const folder of [closed, `${closed}/inner`]) {
        await t.step(`${mode.name}: ${folder.slice(dir.length + 1)}`, async () => {
          const out = await cli([
            ...mode.flags,
            "--run-as",
            "nobody",
            "--cwd",
            folder,
            "--",
            "pwd",
          ]);
          assertRefused(out, [125], /nobody/);
          assert.ok(out.stderr.includes(folder), `names ${folder}: ${out.stderr}`);
          if (mode.json) assert.equal(JSON.parse(out.stdout).error.kind, "apply-failed");
        });
      }
    }
  });
});

Deno.test({
  name: skipReason(
    "a working folder the caller cannot enter: 125 or 2, one line naming it",
    ROOT ? "root enters every folder" : undefined,
  ),
  ignore: ROOT,
}, async (t) => {
  await withTempDir(async (dir) => {
    Deno.mkdirSync(`${dir}/closed/inner`, { recursive: true });
    Deno.chmodSync(`${dir}/closed`, 0o000);
    for (const mode of CLI_MODES) {
      for (const folder of [`${dir}/closed`, `${dir}/closed/inner`]) {
        await t.step(`${mode.name}: ${folder.slice(dir.length + 1)}`, async () => {
          const out = await cli([...mode.flags, "--cwd", folder, "--", "pwd"]);
          assertRefused(out, [2, 125], /closed/);
        });
      }
    }
    await t.step("library", async () => {
      for (const folder of [`${dir}/closed`, `${dir}/closed/inner`]) {
        await assert.rejects(
          () => execSandboxed({ command: ["pwd"], cwd: folder }, READ_ONLY),
          (error: unknown) => {
            assert.ok(error instanceof SandboxError, `${folder}: ${error}`);
            assert.match(error.message, /closed/);
            return true;
          },
        );
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Standard streams

const SEVEN = ["sh", "-c", "echo out; echo err >&2; exit 7"];

Deno.test("closed standard streams: the command's exit status is still the CLI's", async (t) => {
  for (const mode of CLI_MODES) {
    await t.step(mode.name, async () => {
      const control = await cli([...mode.flags, "--", ...SEVEN]);
      assertNoCrash(control);
      const result = commandResult(mode, control);
      assert.equal(result.exitCode, 7);
      assert.equal(result.stdout, "out\n");
      assert.match(mode.json ? result.stderr : control.stderr, /(^|\n)err\n$/);
      for (const close of [[0], [1], [2], [0, 1, 2]]) {
        const out = await cli([...mode.flags, "--", ...SEVEN], { close });
        assertNoCrash(out);
        assert.equal(out.code, 7, `closed ${close}: ${JSON.stringify(out)}`);
        if (!close.includes(1) && mode.json) assert.equal(JSON.parse(out.stdout).stdout, "out\n");
      }
    });
  }
  await t.step("--json --stdin with stdin closed reads nothing", async () => {
    const out = await cli(["--json", "--stdin", "--", "cat"], { close: [0] });
    assertRan({ json: true }, out, { stdout: "" });
  });
});

Deno.test({
  name: skipReason(
    "stdin a terminal: the command in place keeps it",
    Deno.stdin.isTerminal() ? undefined : "needs a terminal on stdin",
  ),
  ignore: !Deno.stdin.isTerminal(),
}, async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, "--", "sh", "-c", "test -t 0"],
    stdin: "inherit",
    stdout: "piped",
    stderr: "piped",
  });
  assert.equal((await child.output()).code, 0);
});

Deno.test("a reader that goes away from the CLI's stderr: the command's status, no crash", async (t) => {
  for (const mode of CLI_MODES) {
    for (const quiet of [false, true]) {
      await t.step(`${mode.name}${quiet ? ", --quiet" : ""}`, async () => {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-all",
            "--quiet",
            MAIN,
            ...(quiet ? ["-q"] : []),
            ...mode.flags,
            "--",
            "sh",
            "-c",
            "sleep 0.5; echo err >&2; echo more >&2; exit 7",
          ],
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        }).spawn();
        await child.stderr.cancel();
        const status = await child.status;
        // 7 when the command's stderr was the supervisor's pipe; 141 (SIGPIPE) when it was ours.
        assert.ok(
          status.code === 7 || status.code === 141 || status.signal === "SIGPIPE",
          `exit ${status.code}, signal ${status.signal}`,
        );
        const left = cgroupsOf(child.pid);
        await removeCgroups(left);
        assert.deepEqual(left, [], "the supervisor removed its cgroup");
      });
    }
  }
});

Deno.test("a command that closes its own streams, or kills itself, is reported as it ended", async (t) => {
  for (const mode of CLI_MODES) {
    await t.step(mode.name, async () => {
      const closes = await cli([
        ...mode.flags,
        "--",
        "sh",
        "-c",
        "exec <&- >&- 2>&-; sleep 0.3; exit 5",
      ]);
      assertRan(mode, closes, { stdout: "", code: 5 });
      const killed = await cli([...mode.flags, "--", "sh", "-c", "echo before; kill -KILL $$"]);
      assertNoCrash(killed);
      assert.ok(
        killed.code === 137 || killed.signal === "SIGKILL",
        `exit ${killed.code}, signal ${killed.signal}`,
      );
      if (mode.json) {
        const result = JSON.parse(killed.stdout);
        assert.equal(result.signal, "SIGKILL");
        assert.equal(result.exitCode, 137);
        assert.equal(result.stdout, "before\n");
      } else {
        assert.equal(killed.stdout, "before\n");
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Signals

Deno.test("SIGTERM and SIGINT to the CLI reach the command, and the CLI exits as it did", async (t) => {
  await withTempDir(async (dir) => {
    for (const mode of CLI_MODES) {
      for (const signal of ["SIGTERM", "SIGINT"] as const) {
        await t.step(`${mode.name}: ${signal}`, async () => {
          const fifo = `${dir}/ready-${mode.flags.join("")}-${signal}`;
          assert.equal((await run("mkfifo", [fifo])).code, 0);
          const child = new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "--allow-all",
              "--quiet",
              MAIN,
              "-q",
              "-s",
              `disk-write-folder=${dir}`,
              ...mode.flags,
              "--",
              "sh",
              "-c",
              `trap 'echo got; exit 3' TERM INT; echo ready > ${fifo}; while :; do sleep 0.1; done`,
            ],
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
          }).spawn();
          const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
          let out: Deno.CommandOutput;
          try {
            // Opening a FIFO for reading waits for the writer: the command is running.
            assert.equal(await Deno.readTextFile(fifo), "ready\n");
            child.kill(signal);
            out = await child.output();
          } finally {
            clearTimeout(timer);
          }
          const left = cgroupsOf(child.pid);
          await removeCgroups(left);
          const stdout = decode(out.stdout);
          assert.equal(out.signal, null, `the CLI died of ${out.signal}, not as the command did`);
          assert.equal(out.code, 3, decode(out.stderr));
          assert.equal(mode.json ? JSON.parse(stdout).stdout : stdout, "got\n");
          assert.deepEqual(left, [], "the supervisor removed its cgroup");
        });
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The environment's size and contents

Deno.test("a huge environment, a newline in a value and an odd name reach the command intact", async (t) => {
  const many: Record<string, string> = {};
  for (let i = 0; i < 3000; i++) many[`LLMX_MANY_${i}`] = `value-${i}`;
  const big = "b".repeat(100 * 1024);
  const env = { ...many, LLMX_BIG: big, LLMX_NL: "one\ntwo", "llmx odd-name.%": "odd" };
  for (const mode of CLI_MODES) {
    await t.step(mode.name, async () => {
      const out = await cli([...mode.flags, "--", "/usr/bin/env"], { env });
      assertRan(mode, out, { stdout: /LLMX_SANDBOX=1/ });
      const seen = `\n${commandResult(mode, out).stdout}`;
      assert.equal(seen.match(/^LLMX_MANY_\d+=value-\d+$/gm)?.length, 3000);
      assert.ok(seen.includes(`\nLLMX_BIG=${big}\n`), "the 100 KB value");
      assert.ok(seen.includes("\nLLMX_NL=one\ntwo\n"), "the value with a newline");
      assert.ok(seen.includes("\nllmx odd-name.%=odd\n"), "the odd name");
    });
  }
  await t.step("library", async () => {
    const result = await execSandboxed({ command: ["/usr/bin/env"], cwd: "/", env }, READ_ONLY);
    assert.equal(result.exitCode, 0, result.stderr);
    const seen = `\n${result.stdout}`;
    assert.equal(seen.match(/^LLMX_MANY_\d+=value-\d+$/gm)?.length, 3000);
    assert.ok(seen.includes(`\nLLMX_BIG=${big}\n`), "the 100 KB value");
    assert.ok(seen.includes("\nLLMX_NL=one\ntwo\n"), "the value with a newline");
    assert.ok(seen.includes("\nllmx odd-name.%=odd\n"), "the odd name");
  });
});

// The kernel takes at most 128 KiB per argument or variable (MAX_ARG_STRLEN, with its NUL):
// `LLMX_LONG=VALUE` is 7 bytes short of it.
const NEAR_LIMIT = "v".repeat(128 * 1024 - 1 - "LLMX_LONG=".length - 6);

Deno.test("a variable near the kernel's size limit runs, or is refused in one line", async (t) => {
  for (const mode of CLI_MODES) {
    await t.step(mode.name, async () => {
      const out = await cli([
        ...mode.flags,
        "--env",
        `LLMX_LONG=${NEAR_LIMIT}`,
        "--",
        "sh",
        "-c",
        'echo "${#LLMX_LONG}"',
      ]);
      assertRanOrRefused(mode, out, `${NEAR_LIMIT.length}\n`);
    });
  }
  await t.step("library", async () => {
    const outcome = await execSandboxed(
      { command: ["sh", "-c", 'echo "${#LLMX_LONG}"'], cwd: "/", env: { LLMX_LONG: NEAR_LIMIT } },
      READ_ONLY,
    ).catch((error) => error);
    if (outcome instanceof Error) {
      assert.ok(outcome instanceof SandboxError, `not a SandboxError: ${outcome}`);
    } else {
      assert.equal(outcome.stdout, `${NEAR_LIMIT.length}\n`);
    }
  });
});

Deno.test("execSandboxed() refuses a NUL byte anywhere with a SandboxError, not a TypeError", async (t) => {
  await withTempDir(async (dir) => {
    // Positive control: the same calls without the NUL run.
    const control = await execSandboxed(
      { command: ["echo", "ab"], cwd: dir, env: { A: "x" }, hide: [`${dir}/x`], protect: ["/x"] },
      ["disk-full-read-access", `disk-write-folder=${dir}`],
    );
    assert.equal(control.exitCode, 0, control.stderr);
    const cases: [string, Parameters<typeof execSandboxed>[0], PolicyInput][] = [
      ["cwd", { command: ["true"], cwd: "/tmp\0x" }, READ_ONLY],
      ["program", { command: ["tr\0ue"], cwd: "/" }, READ_ONLY],
      ["argument", { command: ["echo", "a\0b"], cwd: "/" }, READ_ONLY],
      ["env value", { command: ["true"], cwd: "/", env: { A: "x\0y" } }, READ_ONLY],
      ["env name", { command: ["true"], cwd: "/", env: { "A\0B": "x" } }, READ_ONLY],
      ["envEntries", { command: ["true"], cwd: "/", envEntries: ["A=x\0y"] }, READ_ONLY],
      ["writable folder", { command: ["true"], cwd: "/" }, [
        "disk-full-read-access",
        `disk-write-folder=${dir}\0x`,
      ]],
      ["writable folder, object form", { command: ["true"], cwd: "/" }, [
        "disk-full-read-access",
        { kind: "disk-write-folder", folder: `${dir}\0x` },
      ]],
      ["readable folder", { command: ["true"], cwd: "/tmp" }, ["disk-read-folder=/tmp\0x"]],
      ["hide", { command: ["true"], cwd: "/", hide: ["/tmp\0x"] }, READ_ONLY],
      ["show", { command: ["true"], cwd: "/", show: ["/tmp\0x"] }, READ_ONLY],
      ["protect", { command: ["true"], cwd: dir, protect: ["/x\0y"] }, [
        "disk-full-read-access",
        `disk-write-folder=${dir}`,
      ]],
      ["runAs", { command: ["true"], cwd: "/", runAs: "nob\0ody" }, READ_ONLY],
    ];
    for (const [what, params, policy] of cases) {
      await t.step(what, async () => {
        await assert.rejects(
          () => execSandboxed(params, policy),
          (error: unknown) => {
            assert.ok(error instanceof SandboxError, `${(error as Error)?.name}: ${error}`);
            return true;
          },
        );
      });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The filesystem changing under the planner

Deno.test("a folder the plan lists changing while the sandbox starts does not fail the run", async (t) => {
  await withTempDir(async (home) => {
    // A home folder with a credential location: the planner hides ~/.ssh and so lists the rest
    // of the home folder, which a user's programs change all the time (history, editor files).
    Deno.mkdirSync(`${home}/.ssh`);
    Deno.writeTextFileSync(`${home}/notes`, "");
    const saved = Deno.env.get("HOME");
    const runs = async (): Promise<Record<string, number>> => {
      const outcomes: Record<string, number> = {};
      for (let i = 0; i < 20; i++) {
        const outcome = await execSandboxed({ command: ["true"], cwd: "/" }, READ_ONLY).then(
          (result) => `exit ${result.exitCode} ${JSON.stringify(result.stderr)}`,
          (error) => `${error?.name}: ${String(error?.message).replace(/\d+/g, "N")}`,
        );
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }
      return outcomes;
    };
    try {
      Deno.env.set("HOME", home);
      await t.step("positive control: a quiet home folder", async () => {
        assert.deepEqual(await runs(), { 'exit 0 ""': 20 });
      });
      await t.step("a home folder where files come and go", async () => {
        const churn = new Deno.Command("sh", {
          args: ["-c", "while :; do touch f.new && mv f.new f; rm -f g; touch g; done"],
          cwd: home,
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
        try {
          assert.deepEqual(await runs(), { 'exit 0 ""': 20 });
        } finally {
          churn.kill("SIGKILL");
          await churn.status;
        }
      });
    } finally {
      if (saved === undefined) Deno.env.delete("HOME");
      else Deno.env.set("HOME", saved);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Many runs

Deno.test("200 library runs in a row leave no file, zombie, descriptor or cgroup behind", async () => {
  await withTempDir(async (dir) => {
    const tmp = `${dir}/tmp`;
    Deno.mkdirSync(tmp);
    const saved = Deno.env.get("TMPDIR");
    Deno.env.set("TMPDIR", tmp);
    try {
      // Warm up: the first run loads libc and opens what the process keeps for good.
      await execSandboxed({ command: ["true"], cwd: "/" }, READ_ONLY);
      const before = openDescriptors();
      for (let i = 0; i < 200; i += 8) {
        const results: ExecResult[] = await Promise.all(
          Array.from(
            { length: 8 },
            () =>
              execSandboxed({ command: ["sh", "-c", "echo x; sleep 0 &"], cwd: "/" }, READ_ONLY),
          ),
        );
        for (const result of results) {
          assert.equal(result.exitCode, 0, result.stderr);
          assert.equal(result.stdout, "x\n");
        }
      }
      assert.deepEqual([...Deno.readDirSync(tmp)].map((entry) => entry.name), [], "TMPDIR");
      assert.deepEqual(zombieChildren(), [], "zombie children");
      assert.deepEqual(cgroupsOf(Deno.pid), [], "kill cgroups");
      assert.deepEqual(openDescriptors(), before, "open descriptors");
    } finally {
      if (saved === undefined) Deno.env.delete("TMPDIR");
      else Deno.env.set("TMPDIR", saved);
    }
  });
});

Deno.test({
  name: skipReason(
    "--run-as a user with more processes than RLIMIT_NPROC: runs or 125, never 126 for `true`",
    NOT_ROOT ?? (which("setpriv") && which("prlimit") ? undefined : "needs setpriv and prlimit"),
  ),
  ignore: NOT_ROOT !== undefined || !which("setpriv") || !which("prlimit"),
}, async (t) => {
  // Three processes of nobody's, and a process limit of two: after the switch to nobody the
  // kernel refuses execve with EAGAIN (PF_NPROC_EXCEEDED). The same happens, by chance, when
  // runs as one user overlap under a low limit: "126 true: Resource temporarily unavailable".
  const sleepers = Array.from({ length: 3 }, () =>
    new Deno.Command("setpriv", {
      args: ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "sleep", "60"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn());
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const mode of CLI_MODES) {
      await t.step(mode.name, async () => {
        const control = await cli([
          ...mode.flags,
          "--run-as",
          "nobody",
          "--cwd",
          "/",
          "--",
          "true",
        ]);
        assertRan(mode, control, { stdout: "" });
        const child = new Deno.Command("prlimit", {
          args: [
            "--nproc=2",
            Deno.execPath(),
            "run",
            "--allow-all",
            "--quiet",
            MAIN,
            ...mode.flags,
            "--run-as",
            "nobody",
            "--cwd",
            "/",
            "--",
            "true",
          ],
          env: { NO_COLOR: "1" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        });
        const { code, signal, stdout, stderr } = await child.output();
        const out = { code, signal, stdout: decode(stdout), stderr: decode(stderr) };
        if (out.code === 0) assertRan(mode, out, { stdout: "" });
        else assertRefused(out, [125], /nobody|process/i);
      });
    }
  } finally {
    for (const sleeper of sleepers) {
      sleeper.kill("SIGKILL");
      await sleeper.status;
    }
  }
});

// LLMX_STRESS=N: N library runs (16 at a time) and N/6 CLI runs in place (4 at a time), while
// busy loops keep every CPU loaded. Default 96: a few seconds. Hunts an intermittent failure of
// `true` (126, "Resource temporarily unavailable") seen in CI.
const STRESS = Number(Deno.env.get("LLMX_STRESS") ?? "96");

Deno.test(`stress: ${STRESS} library and ${Math.ceil(STRESS / 6)} in-place runs of true under CPU load all succeed`, async () => {
  assert.ok(Number.isSafeInteger(STRESS) && STRESS > 0, `LLMX_STRESS=${STRESS}`);
  const load = Array.from(
    { length: Math.max(2, navigator.hardwareConcurrency) },
    () =>
      new Deno.Command("sh", {
        args: ["-c", "while :; do :; done"],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn(),
  );
  const failures: string[] = [];
  try {
    for (let i = 0; i < STRESS; i += 16) {
      await Promise.all(
        Array.from({ length: Math.min(16, STRESS - i) }, async () => {
          try {
            const result = await execSandboxed({ command: ["true"], cwd: "/" }, READ_ONLY);
            if (result.exitCode !== 0 || result.stderr !== "") {
              failures.push(`library: ${result.exitCode} ${JSON.stringify(result.stderr)}`);
            }
          } catch (error) {
            failures.push(`library: threw ${error}`);
          }
        }),
      );
    }
    const inPlace = Math.ceil(STRESS / 6);
    for (let i = 0; i < inPlace; i += 4) {
      await Promise.all(
        Array.from({ length: Math.min(4, inPlace - i) }, async () => {
          const out = await cli(["--cwd", "/", "--", "true"]);
          if (out.code !== 0 || out.stderr !== RESTRICTED_STDERR) {
            failures.push(`in place: ${out.code} ${out.signal} ${JSON.stringify(out.stderr)}`);
          }
        }),
      );
    }
  } finally {
    for (const busy of load) {
      busy.kill("SIGKILL");
      await busy.status;
    }
  }
  const counts = new Map<string, number>();
  for (const failure of failures) counts.set(failure, (counts.get(failure) ?? 0) + 1);
  assert.deepEqual(
    Object.fromEntries(counts),
    {},
    `${failures.length} of ${STRESS + Math.ceil(STRESS / 6)} runs failed (failure: how often)`,
  );
});
