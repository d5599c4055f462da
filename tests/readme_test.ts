// The README as a newcomer follows it: the documented install (into a scratch prefix), then the
// quick start and every example of the Usage section, run as written from a project folder of
// the user's own, with the installed command. Where an example needs the npm registry and it
// cannot be reached, that example is a visible skip.

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { type Output, run, skipReason, tempDir, which } from "./_helpers.ts";
import { LIMIT_OPTIONS } from "../policy/limits.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const README = Deno.readTextFileSync(`${ROOT}/README.md`);

/** The shell blocks of a README section (from its heading to the next `## `). */
function blocks(heading: string): string[][] {
  const start = README.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README has "${heading}"`);
  const end = README.indexOf("\n## ", start + heading.length + 2);
  const section = README.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) =>
    match[1].split("\n").filter((line) => line.trim() !== "")
  );
}

/** A command line without its trailing comment, and the comment. */
function split(line: string): { command: string; comment: string } {
  const hash = line.search(/\s+#\s/);
  return hash === -1
    ? { command: line.trim(), comment: "" }
    : { command: line.slice(0, hash).trim(), comment: line.slice(hash).replace(/^\s+#\s*/, "") };
}

/** Where the install goes: outside /tmp, which examples make writable (the command refuses a
 * policy that could rewrite its own install). */
function scratchOutsideTmp(): string {
  for (const dir of ["/var/tmp", Deno.env.get("HOME")]) {
    if (!dir) continue;
    try {
      const probe = Deno.makeTempDirSync({ dir, prefix: "llmx-install-" });
      return Deno.realPathSync(probe);
    } catch {
      // Not writable here.
    }
  }
  throw new Error("Neither /var/tmp nor $HOME can hold a scratch install");
}

async function registryReachable(): Promise<string | undefined> {
  try {
    const response = await fetch("https://registry.npmjs.org/", {
      signal: AbortSignal.timeout(5000),
    });
    await response.body?.cancel();
    return undefined;
  } catch (error) {
    return `the npm registry cannot be reached: ${(error as Error).message}`;
  }
}

const NO_NPM = which("npm") ? undefined : "npm not installed";

Deno.test({
  name: skipReason(
    "README: the install gives a command that sandboxes the user's own project",
    NO_NPM,
  ),
  ignore: NO_NPM !== undefined,
  async fn(t) {
    const prefix = scratchOutsideTmp();
    const project = tempDir();
    // Outside /tmp too: Deno's cache lives in it, which --full-auto must not be able to write.
    const home = scratchOutsideTmp();
    try {
      await t.step("the documented install, into a scratch prefix", async () => {
        const [install] = blocks("## Install").flat().map(split);
        assert.match(install.command, /^npm install -g --install-links \.\/llmx-sandbox$/);
        // The same command from the folder that holds the clone, with a prefix of its own.
        const args = install.command.split(" ").slice(1).map((arg) =>
          arg === "./llmx-sandbox" ? `./${ROOT.split("/").pop()}` : arg
        );
        const out = await run("npm", [...args, "--prefix", prefix], { cwd: dirname(ROOT) });
        assert.equal(out.code, 0, out.stderr);
        const version = await run(`${prefix}/bin/llmx-sandbox`, ["--version"], { cwd: project });
        assert.match(version.stdout, /^llmx-sandbox \d+\.\d+\.\d+\n$/, version.stderr);
      });

      // The user's project: a C program and its Makefile, a package.json with a test.
      Deno.writeTextFileSync(
        `${project}/hello.c`,
        '#include <stdio.h>\nint main(void) { puts("built"); return 0; }\n',
      );
      Deno.writeTextFileSync(`${project}/Makefile`, "hello: hello.c\n\tcc -o hello hello.c\n");
      Deno.writeTextFileSync(
        `${project}/package.json`,
        JSON.stringify({
          name: "my-project",
          version: "1.0.0",
          scripts: { test: "node -e 0" },
          dependencies: { "is-number": "7.0.0" },
        }),
      );
      Deno.mkdirSync(`${home}/.npm`);
      // A user's shell: none of the npm_config_* variables that `npx deno task test` would pass.
      const env = {
        PATH: `${prefix}/bin:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
        HOME: home,
        USER: Deno.env.get("USER") ?? "user",
        LANG: "C.UTF-8",
      };
      const shell = (command: string): Promise<Output> =>
        run("sh", ["-c", command], { cwd: project, env, clearEnv: true });
      const needs = async (command: string) => {
        if (/\bmake\b/.test(command) && (!which("make") || !which("cc"))) {
          return "make or cc not installed";
        }
        if (/\bnpm\b/.test(command) && !which("npm")) return "npm not installed";
        if (/\bnpm install\b/.test(command)) return await registryReachable();
        return undefined;
      };
      const examples = [
        ...blocks("## Quick start")[0].filter((line) => line.startsWith("llmx-sandbox ")),
        ...blocks("## Usage").flat().filter((line) => line.startsWith("llmx-sandbox ")),
        ...["### Network by domain", "### Resource limits"].flatMap((heading) =>
          blocks(heading).flat().filter((line) => line.startsWith("llmx-sandbox "))
        ),
      ].filter((line, i, all) => all.indexOf(line) === i).map(split);
      assert.ok(examples.length >= 7, `the README's examples: ${examples.length}`);
      for (const { command, comment } of examples) {
        const skip = await needs(command);
        await t.step({
          name: skipReason(`${command}${comment ? `  # ${comment}` : ""}`, skip),
          ignore: skip !== undefined,
          async fn() {
            for (const built of ["hello", "proof.txt"]) {
              try {
                Deno.removeSync(`${project}/${built}`);
              } catch {
                // Not made yet.
              }
            }
            const out = await shell(command);
            if (/^denied/.test(comment)) {
              assert.notEqual(out.code, 0, "the denied example fails");
              assert.match(out.stderr, /Permission denied/);
              assert.throws(() => Deno.statSync(`${project}/proof.txt`), Deno.errors.NotFound);
            } else if (/--probe/.test(command)) {
              assert.ok(out.code === 0 || out.code === 1, `${out.code}: ${out.stderr}`);
              assert.match(out.stdout, /^verdict /m);
            } else {
              assert.equal(out.code, 0, `${command}\n${out.stdout}\n${out.stderr}`);
              if (/-- make( -j\d+)?$/.test(command) && !/--explain/.test(command)) {
                assert.ok(Deno.statSync(`${project}/hello`).isFile, "make built it in the project");
              }
              if (/^allowed/.test(comment)) {
                assert.equal(Deno.readTextFileSync(`${project}/proof.txt`), "hi\n");
              }
              if (/npm install$/.test(command)) {
                assert.ok(Deno.statSync(`${project}/node_modules/is-number`).isDirectory);
              }
            }
          },
        });
      }
    } finally {
      for (const dir of [prefix, project, home]) Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test("README: the Usage block lists every option the CLI takes, and --help every example", async () => {
  const usage = blocks("## Usage");
  const parser = Deno.readTextFileSync(`${ROOT}/cli/parse_args.ts`);
  const options = [
    ...[...parser.matchAll(/\["(--[a-z-]+)", "/g)].map((match) => match[1]),
    ...Object.values(LIMIT_OPTIONS),
  ];
  const readmeUsage = README.slice(README.indexOf("## Usage"), README.indexOf("### Permissions"));
  for (const option of options) {
    assert.ok(readmeUsage.includes(option), `README documents ${option}`);
  }
  const help = await run(Deno.execPath(), ["run", "-A", `${ROOT}/main.ts`, "--help"]);
  for (const line of usage.flat().filter((line) => line.startsWith("llmx-sandbox "))) {
    const { command } = split(line);
    assert.ok(help.stdout.replace(/\s+/g, " ").includes(command), `--help shows ${command}`);
  }
});
