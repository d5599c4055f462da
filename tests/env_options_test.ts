// End to end: the command's environment from the command line (--clear-env, --env) and the
// markers the sandbox adds. The CLI is started with an environment of the test's own (nothing
// inherited), so that exactly what the caller had is known.

import assert from "node:assert/strict";
import { MAIN, MODES, type Output, tempDir } from "./_helpers.ts";

const decoder = new TextDecoder();

/**
 * Where Deno keeps its cache, and an empty XDG_CONFIG_HOME so that no user config takes part:
 * added to every environment given to the CLI (--clear-env drops both).
 */
const CLI_ONLY: Record<string, string> = {
  ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
  XDG_CONFIG_HOME: "/nonexistent/llmx-test-no-config",
};

/** Runs the CLI with exactly `env` (and `CLI_ONLY`) as its environment. */
async function runCliWithEnv(
  args: readonly string[],
  env: Record<string, string>,
): Promise<Output> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, ...args],
    env: { ...env, ...CLI_ONLY },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    signal: out.signal,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** The command's environment as sorted `KEY=VALUE` lines. */
async function commandEnv(args: readonly string[], env: Record<string, string>): Promise<string[]> {
  const out = await runCliWithEnv([...args, "--", "env"], env);
  assert.equal(out.code, 0, out.stderr);
  return out.stdout.trimEnd().split("\n").sort();
}

/** The caller's variables every case has. */
const BASE: Record<string, string> = {
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  HOME: Deno.env.get("HOME") ?? "/root",
};

const sorted = (env: Record<string, string>) =>
  Object.entries(env).map(([key, value]) => `${key}=${value}`).sort();

Deno.test("variables that look like credentials are dropped by default; --env NAME and --inherit-env keep them", async (t) => {
  const credentials = {
    OPENAI_API_KEY: "k",
    GITHUB_TOKEN: "t",
    AWS_SECRET_ACCESS_KEY: "s",
    DB_PASSWORD: "p",
    GOOGLE_APPLICATION_CREDENTIALS: "/c.json",
    SSH_AUTH_SOCK: "/run/agent.sock",
    lower_api_key: "l",
  };
  const caller = { ...BASE, OTHER: "o", ...credentials };
  const names = (lines: string[]) => lines.map((line) => line.slice(0, line.indexOf("=")));
  for (const mode of MODES) {
    await t.step(`${mode.name}: positive control: --inherit-env passes them all`, async () => {
      const lines = await commandEnv([...mode.flags, "--inherit-env"], caller);
      for (const [key, value] of Object.entries(credentials)) {
        assert.ok(lines.includes(`${key}=${value}`), key);
      }
    });
    await t.step(`${mode.name}: by default none reaches the command, the rest does`, async () => {
      const lines = await commandEnv([...mode.flags], caller);
      for (const key of Object.keys(credentials)) assert.ok(!names(lines).includes(key), key);
      assert.ok(lines.includes("OTHER=o"));
      assert.ok(lines.includes(`PATH=${BASE.PATH}`));
    });
    await t.step(`${mode.name}: --env NAME passes one through`, async () => {
      const lines = await commandEnv([...mode.flags, "--env", "GITHUB_TOKEN"], caller);
      assert.ok(lines.includes("GITHUB_TOKEN=t"));
      assert.ok(!names(lines).includes("OPENAI_API_KEY"));
    });
  }
  await t.step("--explain lists the names dropped, never their values", async () => {
    const out = await runCliWithEnv(["--explain", "--env", "GITHUB_TOKEN", "--", "true"], caller);
    assert.equal(out.code, 0, out.stderr);
    const plan = JSON.parse(out.stdout);
    assert.deepEqual(
      plan.envDropped,
      Object.keys(credentials).filter((key) => key !== "GITHUB_TOKEN").sort(),
    );
    for (const value of ["/run/agent.sock", "/c.json"]) assert.ok(!out.stdout.includes(value));
  });
});

Deno.test("--clear-env keeps only PATH, HOME, TERM, LANG, USER, TMPDIR and the markers", async (t) => {
  const tmpdir = tempDir();
  try {
    const kept = { ...BASE, TERM: "xterm-test", LANG: "C.UTF-8", USER: "tester", TMPDIR: tmpdir };
    const caller = { ...kept, SECRET_TOKEN: "s3cret", OTHER: "o" };
    for (const mode of MODES) {
      await t.step(`${mode.name}: positive control: without it everything passes`, async () => {
        const lines = await commandEnv([...mode.flags, "--inherit-env"], caller);
        assert.ok(lines.includes("SECRET_TOKEN=s3cret"), lines.join(" "));
        assert.ok(lines.includes("OTHER=o"));
      });
      await t.step(`${mode.name}: all six set in the caller`, async () => {
        assert.deepEqual(
          await commandEnv([...mode.flags, "--clear-env"], caller),
          sorted({
            ...kept,
            LLMX_SANDBOX: "1",
            LLMX_SANDBOX_NETWORK_DISABLED: "1",
          }),
        );
      });
      await t.step(`${mode.name}: only those set in the caller`, async () => {
        assert.deepEqual(
          await commandEnv([...mode.flags, "--clear-env"], { ...BASE, LANG: "C", OTHER: "o" }),
          sorted({ ...BASE, LANG: "C", LLMX_SANDBOX: "1", LLMX_SANDBOX_NETWORK_DISABLED: "1" }),
        );
      });
    }
  } finally {
    Deno.removeSync(tmpdir, { recursive: true });
  }
});

Deno.test("--env KEY copies from the caller, --env KEY=VALUE sets", async (t) => {
  const caller = { ...BASE, SECRET_TOKEN: "s3cret", OTHER: "o", REPLACED: "old" };
  for (const mode of MODES) {
    await t.step(`${mode.name}: with --clear-env`, async () => {
      const lines = await commandEnv([
        ...mode.flags,
        "--clear-env",
        "--env",
        "SECRET_TOKEN",
        "--env",
        "NEW=a=b",
        "--env",
        "REPLACED=new",
        "--env",
        "NOT_IN_CALLER",
        "--env",
        "EMPTY=",
      ], caller);
      for (const entry of ["SECRET_TOKEN=s3cret", "NEW=a=b", "REPLACED=new", "EMPTY="]) {
        assert.ok(lines.includes(entry), `${entry} in ${lines.join(" ")}`);
      }
      assert.ok(!lines.some((line) => line.startsWith("OTHER=")), "not copied: dropped");
      assert.ok(!lines.some((line) => line.startsWith("NOT_IN_CALLER")), "unset: skipped");
    });
    await t.step(`${mode.name}: without --clear-env, KEY=VALUE replaces the caller's`, async () => {
      const lines = await commandEnv([...mode.flags, "--env", "REPLACED=new"], caller);
      assert.ok(lines.includes("REPLACED=new"));
      assert.ok(!lines.includes("REPLACED=old"));
      assert.ok(lines.includes("OTHER=o"));
    });
  }
});

Deno.test("LLMX_SANDBOX_NETWORK_DISABLED only with the network restricted; markers win", async (t) => {
  for (const mode of MODES) {
    await t.step(`${mode.name}: absent with network-full-access`, async () => {
      const lines = await commandEnv([...mode.flags, "-s", "network-full-access"], BASE);
      assert.ok(lines.includes("LLMX_SANDBOX=1"), lines.join(" "));
      assert.ok(!lines.some((line) => line.startsWith("LLMX_SANDBOX_NETWORK_DISABLED=")));
    });
    await t.step(`${mode.name}: present with network-connect-tcp (still restricted)`, async () => {
      const lines = await commandEnv([...mode.flags, "-s", "network-connect-tcp=9"], BASE);
      assert.ok(lines.includes("LLMX_SANDBOX_NETWORK_DISABLED=1"), lines.join(" "));
    });
    await t.step(`${mode.name}: --env cannot turn the markers off`, async () => {
      const lines = await commandEnv([
        ...mode.flags,
        "--env",
        "LLMX_SANDBOX=0",
        "--env",
        "LLMX_SANDBOX_NETWORK_DISABLED=0",
      ], BASE);
      assert.ok(lines.includes("LLMX_SANDBOX=1"), lines.join(" "));
      assert.ok(lines.includes("LLMX_SANDBOX_NETWORK_DISABLED=1"));
    });
  }
});

Deno.test("an invalid --env is a wrong invocation: exit 2, nothing runs", async (t) => {
  const dir = tempDir();
  try {
    const marker = `${dir}/marker`;
    const touch = [
      "-s",
      "disk-full-read-access",
      "-s",
      `disk-write-folder=${dir}`,
      "--",
      "touch",
      marker,
    ];
    await t.step("positive control: a valid --env runs the command", async () => {
      const out = await runCliWithEnv(["--env", "A=1", ...touch], BASE);
      assert.equal(out.code, 0, out.stderr);
      Deno.removeSync(marker);
    });
    for (const value of ["=x", ""]) {
      await t.step(`--env ${JSON.stringify(value)}`, async () => {
        const out = await runCliWithEnv(["--env", value, ...touch], BASE);
        assert.equal(out.code, 2, out.stderr);
        assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
        assert.match(out.stderr, /^llmx-sandbox: Invalid --env/);
        assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);
      });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
