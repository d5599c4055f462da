// End to end: restricted reads. Without disk-full-read-access only the platform set, what the
// starter programs need, the cwd, the writable roots and each disk-read-folder are readable.
// Every denial first shows the same read working without the sandbox and with
// disk-full-read-access. Secrets are files these tests create (in temporary folders and under
// $HOME) and remove.

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { MODES, type Output, run, runCli, skipReason, tempDir, which } from "./_helpers.ts";

const HOME = Deno.env.get("HOME") || undefined;
const NO_HOME = HOME ? undefined : "$HOME is not set";

const PYTHON3 = which("python3");
const NO_PYTHON3 = PYTHON3 ? undefined : "python3 not installed";
// Deno puts its own `node` shim on PATH when there is no Node.js; that is not Node.
const NODE_FOUND = which("node");
const NODE = NODE_FOUND && !Deno.realPathSync(NODE_FOUND).endsWith("/deno") &&
    new TextDecoder().decode(
        new Deno.Command(NODE_FOUND, {
          args: ["-p", "typeof Deno"],
          stdout: "piped",
          stderr: "null",
        }).outputSync().stdout,
      ).trim() === "undefined"
  ? NODE_FOUND
  : undefined;

/** Exit codes that mean the CLI, not the command, ended the run. */
const NOT_THE_COMMAND = [2, 124, 125, 126, 127];

/** A policy that restricts reads: write in the cwd only, reads restricted by name. */
const restricted = (cwd: string) => ["--restrict-reads", "-s", "disk-write-cwd", "--cwd", cwd];

const secretText = () => `llmx-test-secret-${crypto.randomUUID()}`;

function assertRead(out: Output, secret: string, what: string): void {
  assert.equal(out.code, 0, `${what} must be readable (exit ${out.code}): ${out.stderr}`);
  assert.ok(out.stdout.includes(secret), `${what} must be read: ${out.stdout}`);
}

function assertReadDenied(out: Output, secret: string, what: string): void {
  assert.ok(!out.stdout.includes(secret), `${what} must not be read: ${out.stdout}`);
  assert.notEqual(out.code, 0, `${what}: the read must fail`);
  assert.ok(
    !NOT_THE_COMMAND.includes(out.code) &&
      !/^llmx-sandbox: (?!warning:|hint:|note:)/m.test(out.stderr),
    `${what}: the command must have run and failed by itself (exit ${out.code}): ${out.stderr}`,
  );
  assert.match(out.stderr, /Permission denied/, what);
}

/** A secret in a temporary folder of its own, and a file directly under $HOME, both removed. */
interface Secrets {
  /** The folder holding `file`; outside every root the sandbox makes readable. */
  folder: string;
  file: string;
  /** `$HOME/.llmx-test-secret-<uuid>`, or `undefined` without $HOME. */
  homeFile?: string;
  /** `$HOME/.llmx-test-<uuid>`, a folder holding `homeFolderFile`. */
  homeFolder?: string;
  homeFolderFile?: string;
  text: string;
  /** A working folder for the command, apart from the secrets. */
  cwd: string;
}

async function withSecrets(fn: (secrets: Secrets) => Promise<void>): Promise<void> {
  const text = secretText();
  const folder = tempDir();
  const cwd = tempDir();
  const id = crypto.randomUUID();
  const homeFile = HOME ? `${HOME}/.llmx-test-secret-${id}` : undefined;
  const homeFolder = HOME ? `${HOME}/.llmx-test-${id}` : undefined;
  try {
    Deno.writeTextFileSync(`${folder}/secret`, text);
    if (homeFile && homeFolder) {
      Deno.writeTextFileSync(homeFile, text);
      Deno.mkdirSync(homeFolder);
      Deno.writeTextFileSync(`${homeFolder}/secret`, text);
    }
    await fn({
      folder,
      file: `${folder}/secret`,
      homeFile,
      homeFolder,
      homeFolderFile: homeFolder && `${homeFolder}/secret`,
      text,
      cwd,
    });
  } finally {
    for (const path of [folder, cwd, homeFile, homeFolder]) {
      if (path) Deno.removeSync(path, { recursive: true });
    }
  }
}

Deno.test("with restricted reads, sh, python3 and node start", async (t) => {
  const cwd = tempDir();
  try {
    for (const mode of MODES) {
      await t.step(`${mode.name}: sh -c true`, async () => {
        const out = await runCli([...mode.flags, ...restricted(cwd), "--", "sh", "-c", "true"]);
        assert.equal(out.code, 0, out.stderr);
      });
      await t.step({
        name: skipReason(`${mode.name}: python3 -c "print(1)"`, NO_PYTHON3),
        ignore: !PYTHON3,
        async fn() {
          const out = await runCli([
            ...mode.flags,
            ...restricted(cwd),
            "--",
            "python3",
            "-c",
            "print(1)",
          ]);
          assert.equal(out.code, 0, out.stderr);
          assert.equal(out.stdout, "1\n");
        },
      });
      await t.step({
        name: skipReason(
          `${mode.name}: node -e 1`,
          NODE ? undefined : "no real Node.js on PATH (absent, or Deno's node shim)",
        ),
        ignore: !NODE,
        async fn() {
          const out = await runCli([...mode.flags, ...restricted(cwd), "--", "node", "-e", "1"]);
          assert.equal(out.code, 0, out.stderr);
          const printed = await runCli([
            ...mode.flags,
            ...restricted(cwd),
            "--",
            "node",
            "-p",
            "6 * 7",
          ]);
          assert.equal(printed.code, 0, printed.stderr);
          assert.equal(printed.stdout, "42\n");
        },
      });
    }
  } finally {
    Deno.removeSync(cwd, { recursive: true });
  }
});

Deno.test("with restricted reads a secret outside the readable set is denied", async (t) => {
  await withSecrets(async (s) => {
    const files = [s.file, ...(s.homeFile ? [s.homeFile] : [])];
    await t.step("positive control: cat and ls read them without the sandbox", async () => {
      for (const file of files) assertRead(await run("cat", [file]), s.text, file);
      const listing = await run("ls", [s.folder]);
      assert.equal(listing.stdout, "secret\n", listing.stderr);
    });
    for (const mode of MODES) {
      await t.step(
        `${mode.name}: positive control: readable with disk-full-read-access`,
        async () => {
          for (const file of files) {
            const out = await runCli([
              ...mode.flags,
              "-s",
              "disk-write-cwd",
              "--cwd",
              s.cwd,
              "--",
              "cat",
              file,
            ]);
            assertRead(out, s.text, file);
          }
        },
      );
      await t.step(`${mode.name}: denied without disk-full-read-access`, async () => {
        for (const file of files) {
          const out = await runCli([...mode.flags, ...restricted(s.cwd), "--", "cat", file]);
          assertReadDenied(out, s.text, file);
        }
      });
      await t.step(`${mode.name}: listing the secret's folder is denied too`, async () => {
        const out = await runCli([...mode.flags, ...restricted(s.cwd), "--", "ls", s.folder]);
        assert.notEqual(out.code, 0);
        assert.match(out.stderr, /Permission denied/);
      });
      await t.step({
        name: skipReason(`${mode.name}: python3 cannot open it either`, NO_PYTHON3),
        ignore: !!NO_PYTHON3,
        async fn() {
          const out = await runCli([
            ...mode.flags,
            ...restricted(s.cwd),
            "--",
            "python3",
            "-c",
            "import sys; print(open(sys.argv[1]).read())",
            s.file,
          ]);
          assert.ok(!out.stdout.includes(s.text));
          assert.match(out.stderr, /PermissionError/);
        },
      });
    }
  });
});

Deno.test("/proc/self/root does not reach a secret outside the set", async (t) => {
  await withSecrets(async (s) => {
    const paths = [`/proc/self/root${s.file}`, `/proc/thread-self/root${s.file}`];
    await t.step("positive control: readable through /proc without the sandbox", async () => {
      for (const path of paths) assertRead(await run("cat", [path]), s.text, path);
    });
    for (const mode of MODES) {
      await t.step(`${mode.name}: denied with restricted reads`, async () => {
        for (const path of paths) {
          const out = await runCli([...mode.flags, ...restricted(s.cwd), "--", "cat", path]);
          assertReadDenied(out, s.text, path);
        }
      });
    }
  });
});

Deno.test("disk-read-folder makes a folder readable: absolute, ~/..., relative", async (t) => {
  await withSecrets(async (s) => {
    for (const mode of MODES) {
      await t.step(`${mode.name}: disk-read-folder=<the secret's folder>`, async () => {
        const out = await runCli([
          ...mode.flags,
          ...restricted(s.cwd),
          "-s",
          `disk-read-folder=${s.folder}`,
          "--",
          "cat",
          s.file,
        ]);
        assertRead(out, s.text, s.file);
      });
      await t.step({
        name: skipReason(`${mode.name}: disk-read-folder=~/... expands ~`, NO_HOME),
        ignore: !!NO_HOME,
        async fn() {
          const name = s.homeFolder!.slice(HOME!.length + 1);
          const out = await runCli([
            ...mode.flags,
            ...restricted(s.cwd),
            "-s",
            `disk-read-folder=~/${name}`,
            "--",
            "sh",
            "-c",
            'cat "$1"; echo; cat "$2"',
            "sh",
            s.homeFolderFile!,
            s.homeFile!,
          ]);
          assert.ok(out.stdout.startsWith(`${s.text}\n`), `${s.homeFolderFile}: ${out.stderr}`);
          // Only that folder: the file beside it, directly under $HOME, stays denied.
          assert.equal(out.stdout, `${s.text}\n`);
          assert.match(out.stderr, /Permission denied/);
          const home = await runCli([
            ...mode.flags,
            ...restricted(s.cwd),
            "-s",
            "disk-read-folder=~",
            "--",
            "cat",
            s.homeFile!,
          ]);
          assertRead(home, s.text, `${s.homeFile} with disk-read-folder=~`);
        },
      });
    }
    // A relative folder: against --cwd when given, else against the process cwd. The process
    // cwd used with --cwd is a folder where the same relative path does not exist.
    const root = tempDir();
    const elsewhere = tempDir();
    try {
      const name = `secrets-${crypto.randomUUID()}`;
      Deno.mkdirSync(`${root}/cwd`);
      Deno.mkdirSync(`${root}/${name}`);
      Deno.writeTextFileSync(`${root}/${name}/secret`, s.text);
      const file = `${root}/${name}/secret`;
      assert.throws(() => Deno.statSync(`${dirname(elsewhere)}/${name}`), Deno.errors.NotFound);
      for (const mode of MODES) {
        await t.step(`${mode.name}: a relative folder is resolved against --cwd`, async () => {
          const denied = await runCli(
            [...mode.flags, ...restricted(`${root}/cwd`), "--", "cat", file],
            { cwd: elsewhere },
          );
          assertReadDenied(denied, s.text, `${file} without disk-read-folder`);
          const out = await runCli(
            [
              ...mode.flags,
              "--cwd",
              `${root}/cwd`,
              "-s",
              `disk-read-folder=../${name}`,
              "--",
              "cat",
              file,
            ],
            { cwd: elsewhere },
          );
          assertRead(out, s.text, file);
        });
        await t.step(`${mode.name}: without --cwd, against the process cwd`, async () => {
          const out = await runCli(
            [...mode.flags, "-s", `disk-read-folder=../${name}`, "--", "cat", file],
            { cwd: `${root}/cwd` },
          );
          assertRead(out, s.text, file);
        });
      }
    } finally {
      Deno.removeSync(root, { recursive: true });
      Deno.removeSync(elsewhere, { recursive: true });
    }
  });
});

Deno.test("with restricted reads /proc is readable as a whole", async (t) => {
  const cwd = tempDir();
  try {
    const direct = await run("cat", ["/proc/1/cmdline"]);
    assert.equal(direct.code, 0, "positive control: /proc/1/cmdline is readable directly");
    assert.notEqual(direct.stdout, "");
    for (const mode of MODES) {
      await t.step(mode.name, async () => {
        const status = await runCli([
          ...mode.flags,
          ...restricted(cwd),
          "--",
          "cat",
          "/proc/self/status",
        ]);
        assert.equal(status.code, 0, status.stderr);
        assert.match(status.stdout, /^Name:\tcat$/m);
        assert.match(status.stdout, /^NoNewPrivs:\t1$/m, "it did run in the sandbox");
        const cmdline = await runCli([
          ...mode.flags,
          ...restricted(cwd),
          "--",
          "cat",
          "/proc/1/cmdline",
        ]);
        assert.equal(cmdline.code, 0, cmdline.stderr);
        assert.equal(cmdline.stdout, direct.stdout);
        const listing = await runCli([...mode.flags, ...restricted(cwd), "--", "ls", "/proc"]);
        assert.equal(listing.code, 0, listing.stderr);
        assert.match(listing.stdout, /^1$/m);
      });
    }
  } finally {
    Deno.removeSync(cwd, { recursive: true });
  }
});

Deno.test("with restricted reads the cwd and the writable roots are readable", async (t) => {
  await withSecrets(async (s) => {
    const writable = tempDir();
    try {
      const inCwd = secretText();
      const inRoot = secretText();
      Deno.writeTextFileSync(`${s.cwd}/mine`, inCwd);
      Deno.writeTextFileSync(`${writable}/mine`, inRoot);
      for (const mode of MODES) {
        await t.step(mode.name, async () => {
          const out = await runCli([
            ...mode.flags,
            "--restrict-reads",
            "--cwd",
            s.cwd,
            "-s",
            `disk-write-folder=${writable}`,
            "--",
            "sh",
            "-c",
            `cat mine; echo; ls; cat ${writable}/mine; echo; ls ${writable}; cat ${s.file}`,
          ]);
          assert.equal(out.stdout, `${inCwd}\nmine\n${inRoot}\nmine\n`, out.stderr);
          // In the same run, the secret outside stays denied: reads were restricted.
          assert.match(out.stderr, /Permission denied/);
        });
      }
    } finally {
      Deno.removeSync(writable, { recursive: true });
    }
  });
});

// The pyenv root, when python3 on PATH is a pyenv shim (`<root>/shims/python3`).
const PYENV_ROOT = (() => {
  if (!PYTHON3 || !PYTHON3.endsWith("/shims/python3")) return undefined;
  return Deno.realPathSync(dirname(dirname(PYTHON3)));
})();

Deno.test("--explain lists the readable roots and no read rule on /", async (t) => {
  const cwd = tempDir();
  try {
    const explain = async (options: string[]) => {
      const out = await runCli([
        "--explain",
        "--cwd",
        cwd,
        ...options,
        "--",
        "python3",
        "-c",
        "print(1)",
      ]);
      assert.equal(out.code, 0, out.stderr);
      return JSON.parse(out.stdout) as {
        readableRoots: string[];
        landlock: { rules: { path: string; rights: string[] }[] };
      };
    };
    await t.step(
      "positive control: with full read, every entry of / is read (/dev aside)",
      async () => {
        const plan = await explain(["-s", "disk-write-cwd"]);
        assert.deepEqual(plan.readableRoots, []);
        const rights = (path: string) =>
          plan.landlock.rules.find((rule) => rule.path === path)?.rights;
        assert.deepEqual(rights("/"), ["read_dir"], "/ is listed, not read as a whole");
        assert.ok(rights(Deno.realPathSync("/usr"))?.includes("read_file"));
        assert.ok(rights(Deno.realPathSync("/tmp"))?.includes("read_file"));
        assert.equal(rights("/dev"), undefined);
      },
    );
    await t.step("restricted: /usr, the cwd and python3's installation; nothing on /", async () => {
      const plan = await explain(["--restrict-reads", "-s", "disk-write-cwd"]);
      assert.ok(plan.readableRoots.includes(Deno.realPathSync("/usr")), plan.readableRoots.join());
      assert.ok(plan.readableRoots.includes(Deno.realPathSync("/proc")));
      assert.ok(plan.readableRoots.includes(cwd));
      assert.ok(!plan.readableRoots.includes("/"));
      assert.ok(!plan.landlock.rules.some((rule) => rule.path === "/"));
      if (HOME) assert.ok(!plan.readableRoots.includes(Deno.realPathSync(HOME)));
    });
    await t.step({
      name: skipReason(
        "restricted: the pyenv root is readable for python3",
        PYENV_ROOT ? undefined : "python3 on PATH is not a pyenv shim",
      ),
      ignore: !PYENV_ROOT,
      async fn() {
        const plan = await explain(["--restrict-reads", "-s", "disk-write-cwd"]);
        assert.ok(plan.readableRoots.includes(PYENV_ROOT!), plan.readableRoots.join());
      },
    });
  } finally {
    Deno.removeSync(cwd, { recursive: true });
  }
});

Deno.test({
  name: skipReason(
    "with restricted reads, a program's installation prefix under $HOME does not expose files beside it",
    NO_HOME,
  ),
  ignore: NO_HOME !== undefined,
  async fn() {
    // The layout of ~/.cargo or ~/.local: <prefix>/bin/tool and a credential beside bin/.
    const prefix = `${HOME}/.llmx-test-${crypto.randomUUID()}`;
    const cwd = tempDir();
    try {
      const text = secretText();
      Deno.mkdirSync(`${prefix}/bin`, { recursive: true });
      Deno.writeTextFileSync(`${prefix}/bin/tool`, '#!/bin/sh\necho started\ncat "$1"\n');
      Deno.chmodSync(`${prefix}/bin/tool`, 0o755);
      Deno.writeTextFileSync(`${prefix}/credentials`, text);
      const direct = await run(`${prefix}/bin/tool`, [`${prefix}/credentials`]);
      assert.equal(direct.stdout, `started\n${text}`, "positive control: readable directly");
      const out = await runCli([
        ...restricted(cwd),
        "--",
        `${prefix}/bin/tool`,
        `${prefix}/credentials`,
      ]);
      assert.ok(out.stdout.startsWith("started\n"), `the tool itself starts: ${out.stderr}`);
      assertReadDenied(out, text, `${prefix}/credentials`);
    } finally {
      Deno.removeSync(prefix, { recursive: true });
      Deno.removeSync(cwd, { recursive: true });
    }
  },
});

Deno.test({
  name: "with restricted reads, another process's /proc/PID/environ is not readable",

  async fn(t) {
    const text = secretText();
    const cwd = tempDir();
    // A process of ours holding a secret in its environment; it reads stdin until we close it.
    const holder = new Deno.Command("cat", {
      env: { LLMX_TEST_SECRET: text },
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const environ = `/proc/${holder.pid}/environ`;
      await t.step("positive control: readable without the sandbox", async () => {
        assertRead(await run("cat", [environ]), text, environ);
      });
      for (const mode of MODES) {
        await t.step(`${mode.name}: denied with restricted reads`, async () => {
          const out = await runCli([...mode.flags, ...restricted(cwd), "--", "cat", environ]);
          assertReadDenied(out, text, environ);
        });
      }
    } finally {
      await holder.stdin.close();
      await holder.status;
      Deno.removeSync(cwd, { recursive: true });
    }
  },
});

Deno.test({
  name: "with restricted reads, a PATH entry that is a file is skipped as a shell does",
  async fn(t) {
    const dir = tempDir();
    try {
      const file = `${dir}/not-a-folder`;
      Deno.writeTextFileSync(file, "");
      const env = { PATH: `${file}:/usr/bin:/bin` };
      await t.step("positive control: sh finds ls after the stale entry", async () => {
        const out = await run("sh", ["-c", "ls -d /"], { env });
        assert.equal(out.code, 0, out.stderr);
      });
      await t.step("positive control: with full read the CLI runs it", async () => {
        const out = await runCli(["--", "ls", "-d", "/"], { env });
        assert.equal(out.code, 0, out.stderr);
      });
      for (const mode of MODES) {
        await t.step(`${mode.name}: with restricted reads too`, async () => {
          const out = await runCli([...mode.flags, ...restricted(dir), "--", "ls", "-d", "/"], {
            env,
          });
          assert.equal(out.code, 0, out.stderr);
          assert.equal(out.stdout, "/\n");
        });
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a disk-read-folder through a file is a wrong invocation, exit 2",
  async fn(t) {
    const dir = tempDir();
    try {
      const file = `${dir}/file`;
      Deno.writeTextFileSync(file, "");
      for (
        const options of [
          ["-s", `disk-read-folder=${file}/x`],
          ["-s", `disk-write-folder=${file}/x`],
          ["--cwd", `${file}/x`],
        ]
      ) {
        await t.step(options.join(" "), async () => {
          const marker = `${dir}/marker`;
          const out = await runCli([...options, "--", "touch", marker]);
          assert.equal(out.code, 2, out.stderr);
          assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
          assert.match(out.stderr, /^llmx-sandbox: /);
          assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);
        });
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
