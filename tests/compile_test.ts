// `deno task compile`: a real build where a runtime can be had (a visible skip otherwise), the
// one-sentence failure without a runtime, and the rejection of a hollow binary.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { prepareSandbox } from "../exec/sandboxed.ts";
import { sha256Hex } from "../exec/_sha256.ts";
import { ChildChannel } from "../exec/channel.ts";
import { BINARY_PERMISSIONS } from "../scripts/compile.ts";
import { elfArch, verifyBinary } from "../scripts/verify_binary.ts";
import { run, skipReason, tempDir } from "./_helpers.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const COMPILE = `${ROOT}scripts/compile.ts`;
const VERSION = (JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)) as { version: string })
  .version;
const NATIVE = Deno.build.arch;
const NAME = `llmx-sandbox-${NATIVE}-linux`;

/** The environment of a compile that can neither find nor download a runtime. */
function offlineEnv(denoDir: string): Record<string, string> {
  const env = Deno.env.toObject();
  for (const key of ["DENORT_BIN", "NO_PROXY", "no_proxy"]) delete env[key];
  // A closed local port as the proxy: the download fails at once, with or without internet.
  return {
    ...env,
    DENO_DIR: denoDir,
    HTTPS_PROXY: "http://127.0.0.1:9",
    https_proxy: "http://127.0.0.1:9",
    NO_COLOR: "1",
  };
}

function compile(args: string[], env: Record<string, string>) {
  return run(Deno.execPath(), ["run", "--allow-all", "--no-config", COMPILE, ...args], { env });
}

function listing(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
}

/** Why no real build can be made here, or `undefined` when a runtime is at hand. */
async function missingRuntime(): Promise<string | undefined> {
  const denort = Deno.env.get("DENORT_BIN");
  if (denort) {
    return elfArch(denort) === NATIVE ? undefined : `DENORT_BIN=${denort} is not an ${NATIVE} ELF`;
  }
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  const { denoDir } = JSON.parse(new TextDecoder().decode(info.stdout)) as { denoDir: string };
  const cached =
    `${denoDir}/dl/release/v${Deno.version.deno}/denort-${NATIVE}-unknown-linux-gnu.zip`;
  try {
    Deno.statSync(cached);
    return undefined;
  } catch {
    return `no denort runtime: DENORT_BIN is unset and ${cached} is absent`;
  }
}

const missing = await missingRuntime();

Deno.test({
  name: skipReason(`deno task compile builds and verifies ${NAME} with its checksum`, missing),
  ignore: missing !== undefined,
  async fn() {
    const out = tempDir();
    try {
      const result = await compile(["--target", NATIVE, "--out-dir", out], Deno.env.toObject());
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(listing(out), [NAME, `${NAME}.sha256`]);
      assert.match(result.stdout, /verified \(7 checks\)/);
      const digest = sha256Hex(Deno.readFileSync(`${out}/${NAME}`));
      assert.equal(Deno.readTextFileSync(`${out}/${NAME}.sha256`), `${digest}  ${NAME}\n`);
    } finally {
      Deno.removeSync(out, { recursive: true });
    }
  },
});

Deno.test("deno task compile without a runtime fails with one sentence that says how to provide one", async () => {
  const out = tempDir();
  const denoDir = tempDir();
  try {
    const result = await compile(["--target", NATIVE, "--out-dir", out], offlineEnv(denoDir));
    assert.equal(result.code, 3, result.stderr);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(
      lines[0],
      /^compile: No Deno runtime \(denort .* for (x86_64|aarch64)-unknown-linux-gnu\)/,
    );
    assert.match(
      lines[0],
      /set DENORT_BIN=\/path\/to\/denort .* or run deno task compile on a machine with internet access$/,
    );
    assert.deepEqual(listing(out), []);
  } finally {
    Deno.removeSync(out, { recursive: true });
    Deno.removeSync(denoDir, { recursive: true });
  }
});

Deno.test("deno task compile rejects the hollow binary that the deno CLI as DENORT_BIN makes", async () => {
  const out = tempDir();
  const denoDir = tempDir();
  try {
    const env = { ...offlineEnv(denoDir), DENORT_BIN: Deno.execPath() };
    const result = await compile(["--target", NATIVE, "--out-dir", out], env);
    assert.equal(result.code, 5, result.stderr);
    assert.match(result.stderr, /failed verification: --version answered "deno /);
    assert.equal(result.stdout, "");
    assert.deepEqual(listing(out), [], "nothing that looks like a build is left");
  } finally {
    Deno.removeSync(out, { recursive: true });
    Deno.removeSync(denoDir, { recursive: true });
  }
});

Deno.test("deno task compile names a bad value and exits 2", async (t) => {
  const denoDir = tempDir();
  const env = offlineEnv(denoDir);
  for (
    const [args, extra, message] of [
      [["--target", "arm"], {}, 'compile: Unknown --target: "arm" (x86_64 or aarch64)'],
      [["--bogus"], {}, 'compile: Unknown argument: "--bogus"'],
      [
        [],
        { DENORT_BIN: "/nonexistent/denort" },
        "DENORT_BIN=/nonexistent/denort is not a readable file",
      ],
      [
        [],
        { DENORT_BIN: `${ROOT}deno.json` },
        `DENORT_BIN=${ROOT}deno.json is not an ELF executable`,
      ],
    ] as const
  ) {
    await t.step(args.join(" ") || Object.values(extra).join(" "), async () => {
      const result = await compile([...args], { ...env, ...extra });
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stderr.trim().split("\n").length, 1);
      assert.match(result.stderr, new RegExp(message.replace(/[.()[\]]/g, "\\$&")));
    });
  }
  Deno.removeSync(denoDir, { recursive: true });
});

Deno.test("verifyBinary() rejects the deno CLI itself as the built file", async () => {
  const verdict = await verifyBinary(Deno.execPath(), VERSION, { timeoutMs: 20_000 });
  assert.equal(verdict.ok, false);
  assert.deepEqual(verdict.checks, []);
  assert.match((verdict as { failure: string }).failure, /^--version answered "deno /);
});

Deno.test("verifyBinary() accepts a stand-in that runs main.ts with the binary's permissions", async () => {
  const dir = tempDir();
  try {
    const standIn = `${dir}/llmx-sandbox`;
    Deno.writeTextFileSync(
      standIn,
      `#!/bin/sh\nexec '${Deno.execPath()}' run --no-config --quiet ${
        BINARY_PERMISSIONS.join(" ")
      } '${ROOT}main.ts' "$@"\n`,
      { mode: 0o755 },
    );
    const verdict = await verifyBinary(standIn, VERSION);
    assert.deepEqual(verdict, {
      ok: true,
      checks: [
        `--version: llmx-sandbox ${VERSION}`,
        "in place: true exits 0",
        "in place: a write without permission is denied",
        "in place: a granted write works",
        "supervised: true exits 0",
        "supervised: a write without permission is denied",
        "supervised: a granted write works",
      ],
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the binary's permissions suffice for its supervised child", async () => {
  // Under deno run the child gets --allow-all; a compiled child has only the binary's flags.
  const dir = tempDir();
  try {
    const plan = {
      ...prepareSandbox({ command: ["sh", "-c", "echo ok > out"], cwd: dir }, ["disk-write-cwd"]),
      supervision: { parentPid: Deno.pid },
    };
    const bytes = new TextEncoder().encode(JSON.stringify(plan));
    const channel = new ChildChannel(bytes);
    const result = await run(Deno.execPath(), [
      "run",
      "--no-config",
      "--quiet",
      ...BINARY_PERMISSIONS,
      `${ROOT}exec/child_main.ts`,
      String(Deno.pid),
      String(channel.planFd),
      sha256Hex(bytes),
      String(channel.writeFd),
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await channel.lines(), ["started", "exec"]);
    assert.equal(Deno.readTextFileSync(`${dir}/out`), "ok\n");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
