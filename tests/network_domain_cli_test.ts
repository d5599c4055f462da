// End to end: network by domain. The command reaches what `network-domain` names through the
// supervisor's proxy, and nothing else: not by ignoring the proxy, not over UDP, not on another
// port. Every target is a server this test starts on 127.0.0.1, allowed by its IP literal; each
// refusal first shows the same request succeeding where it is allowed, and the server's own count
// says whether it was reached. Real clients (curl, wget, git, python, npm, pip) are driven through
// the variables the sandbox sets; a missing one is a visible skip.

import assert from "node:assert/strict";
import { type Output, runCli, skipReason, tempDir, which } from "./_helpers.ts";
import { probeKernel } from "../exec/kernel.ts";
import { execSandboxed } from "../exec/sandboxed.ts";

const NO_TCP_RULES = probeKernel().landlockAbi < 4
  ? `Landlock ABI ${probeKernel().landlockAbi} has no TCP rules (network-domain needs 4)`
  : undefined;
const missing = (tool: string) => which(tool) ? undefined : `${tool} not installed`;

/** A server of this test's own: a page, a tiny npm registry, a pip index and a git repository. */
class Origin {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #files = new Map<string, { body: Uint8Array<ArrayBuffer>; type: string }>();
  /** Requests served, by path. */
  readonly hits: string[] = [];

  constructor() {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
      const path = new URL(request.url).pathname;
      this.hits.push(path);
      const file = this.#files.get(path);
      if (file) return new Response(file.body, { headers: { "content-type": file.type } });
      if (path === "/hello") return new Response("hello from the origin\n");
      return new Response("not found\n", { status: 404 });
    });
  }

  get port(): number {
    return this.#server.addr.port;
  }

  /** `127.0.0.1:PORT`, as a `network-domain` names it. */
  get domain(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  serve(
    path: string,
    body: Uint8Array<ArrayBuffer> | string,
    type = "application/octet-stream",
  ): void {
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    this.#files.set(path, { body: bytes, type });
  }

  /** Serves every file under `folder` at `prefix/<relative path>`. */
  serveTree(prefix: string, folder: string): void {
    const walk = (dir: string, rel: string) => {
      for (const entry of Deno.readDirSync(dir)) {
        const path = `${dir}/${entry.name}`;
        if (entry.isDirectory) walk(path, `${rel}/${entry.name}`);
        else if (entry.isFile) this.serve(`${prefix}${rel}/${entry.name}`, Deno.readFileSync(path));
      }
    };
    walk(folder, "");
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}

async function withOrigin(fn: (origin: Origin) => Promise<void>): Promise<void> {
  const origin = new Origin();
  try {
    await fn(origin);
  } finally {
    await origin.close();
  }
}

/** Runs the CLI (always supervised with network-domain) in a scratch project folder. */
function sandboxed(args: readonly string[], cwd: string): Promise<Output> {
  return runCli(["-q", "--cwd", cwd, ...args]);
}

const CURL_CODE = ["-s", "-o", "/dev/null", "-w", "%{http_code}\\n", "--max-time", "10"];

Deno.test({
  name: skipReason(
    "network-domain: the named server is reached through the proxy, nothing else is",
    NO_TCP_RULES ?? missing("curl"),
  ),
  ignore: (NO_TCP_RULES ?? missing("curl")) !== undefined,
  async fn(t) {
    const cwd = tempDir();
    try {
      await withOrigin(async (origin) => {
        await withOrigin(async (other) => {
          const allow = ["-s", `network-domain=${origin.domain}`];
          await t.step(
            "positive control: curl reaches both servers without the sandbox",
            async () => {
              for (const server of [origin, other]) {
                const before = server.hits.length;
                const out = await runCli([
                  "-q",
                  "-s",
                  "network-full-access",
                  "--",
                  "curl",
                  ...CURL_CODE,
                  `${server.url}/hello`,
                ]);
                assert.equal(out.stdout, "200\n", out.stderr);
                assert.equal(server.hits.length, before + 1);
              }
            },
          );
          await t.step("plain HTTP through the proxy: reached", async () => {
            const before = origin.hits.length;
            const out = await sandboxed([
              ...allow,
              "--",
              "curl",
              ...CURL_CODE,
              `${origin.url}/hello`,
            ], cwd);
            assert.equal(out.stdout, "200\n", out.stderr);
            assert.equal(origin.hits.length, before + 1);
          });
          await t.step("CONNECT tunnel through the proxy: reached", async () => {
            const before = origin.hits.length;
            const out = await sandboxed(
              [...allow, "--", "curl", "--proxytunnel", ...CURL_CODE, `${origin.url}/hello`],
              cwd,
            );
            assert.equal(out.stdout, "200\n", out.stderr);
            assert.equal(origin.hits.length, before + 1);
          });
          await t.step(
            "another server (another port): 403 from the proxy, not reached",
            async () => {
              const before = other.hits.length;
              const out = await sandboxed([
                ...allow,
                "--",
                "curl",
                ...CURL_CODE,
                `${other.url}/hello`,
              ], cwd);
              assert.equal(out.stdout, "403\n", out.stderr);
              assert.equal(other.hits.length, before, "the other server saw nothing");
            },
          );
          await t.step("ignoring the proxy: the connection itself is refused", async () => {
            for (const server of [origin, other]) {
              const before = server.hits.length;
              const out = await sandboxed(
                [...allow, "--", "curl", "--noproxy", "*", ...CURL_CODE, `${server.url}/hello`],
                cwd,
              );
              assert.equal(out.stdout, "000\n", out.stderr);
              assert.equal(server.hits.length, before, "not reached directly");
            }
          });
          await t.step("UDP: refused", async () => {
            const out = await sandboxed([
              ...allow,
              "--",
              "sh",
              "-c",
              `echo x > /dev/udp/127.0.0.1/${origin.port} && echo sent || echo refused`,
            ], cwd);
            assert.doesNotMatch(out.stdout, /sent/);
          });
          await t.step("--deny-domain wins over network-domain", async () => {
            const before = origin.hits.length;
            const out = await sandboxed(
              [
                ...allow,
                "--deny-domain",
                "127.0.0.1",
                "--",
                "curl",
                ...CURL_CODE,
                `${origin.url}/hello`,
              ],
              cwd,
            );
            assert.equal(out.stdout, "403\n", out.stderr);
            assert.equal(origin.hits.length, before);
          });
        });
      });
    } finally {
      Deno.removeSync(cwd, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason(
    "network-domain: every decision is evidence (--json, the library), refusals get one line",
    NO_TCP_RULES ?? missing("curl"),
  ),
  ignore: (NO_TCP_RULES ?? missing("curl")) !== undefined,
  async fn(t) {
    const cwd = tempDir();
    try {
      await withOrigin(async (origin) => {
        const command = [
          "sh",
          "-c",
          `curl -s -o /dev/null ${origin.url}/hello; curl -s -o /dev/null http://127.0.0.1:9/x`,
        ];
        await t.step("--json: network lists both, with reasons and bytes", async () => {
          const out = await runCli([
            "--json",
            "-q",
            "--cwd",
            cwd,
            "-s",
            `network-domain=${origin.domain}`,
            "--",
            ...command,
          ]);
          const result = JSON.parse(out.stdout);
          assert.equal(result.network.length, 2, out.stdout);
          const [allowed, refused] = result.network;
          assert.equal(allowed.allowed, true);
          assert.equal(allowed.port, origin.port);
          assert.ok(allowed.bytesDown > 0 && allowed.bytesUp > 0);
          assert.equal(refused.allowed, false);
          assert.equal(refused.port, 9);
          assert.match(refused.reason, /port 9 is not allowed for 127\.0\.0\.1/);
        });
        await t.step(
          "supervised: one stderr line per refused host, naming the permission",
          async () => {
            const out = await runCli([
              "--cwd",
              cwd,
              "-s",
              `network-domain=${origin.domain}`,
              "--",
              ...command,
            ]);
            const lines = out.stderr.split("\n").filter((line) =>
              line.includes("network: refused")
            );
            assert.equal(lines.length, 1, out.stderr);
            assert.match(lines[0], /127\.0\.0\.1:9 .*-s network-domain=127\.0\.0\.1:9$/);
            const quiet = await runCli([
              "-q",
              "--cwd",
              cwd,
              "-s",
              `network-domain=${origin.domain}`,
              "--",
              ...command,
            ]);
            assert.doesNotMatch(quiet.stderr, /network: refused/);
          },
        );
        await t.step("the library returns the same list", async () => {
          const result = await execSandboxed({ command, cwd }, [
            "disk-full-read-access",
            `network-domain=${origin.domain}`,
          ]);
          assert.deepEqual(result.network.map((d) => [d.port, d.allowed]), [[origin.port, true], [
            9,
            false,
          ]]);
        });
      });
    } finally {
      Deno.removeSync(cwd, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason(
    "network-domain: wget honours the proxy variables",
    NO_TCP_RULES ?? missing("wget"),
  ),
  ignore: (NO_TCP_RULES ?? missing("wget")) !== undefined,
  async fn() {
    const cwd = tempDir();
    try {
      await withOrigin(async (origin) => {
        const out = await sandboxed([
          "-s",
          `network-domain=${origin.domain}`,
          "--",
          "wget",
          "-q",
          "-O",
          "-",
          `${origin.url}/hello`,
        ], cwd);
        assert.equal(out.stdout, "hello from the origin\n", out.stderr);
      });
    } finally {
      Deno.removeSync(cwd, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason(
    "network-domain: python urllib honours the proxy variables",
    NO_TCP_RULES ?? missing("python3"),
  ),
  ignore: (NO_TCP_RULES ?? missing("python3")) !== undefined,
  async fn() {
    const cwd = tempDir();
    try {
      await withOrigin(async (origin) => {
        const script =
          `import urllib.request; print(urllib.request.urlopen("${origin.url}/hello").read().decode(), end="")`;
        const out = await sandboxed([
          "-s",
          `network-domain=${origin.domain}`,
          "--",
          "python3",
          "-c",
          script,
        ], cwd);
        assert.equal(out.stdout, "hello from the origin\n", out.stderr);
      });
    } finally {
      Deno.removeSync(cwd, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason(
    "network-domain: git clones over http through the proxy",
    NO_TCP_RULES ?? missing("git"),
  ),
  ignore: (NO_TCP_RULES ?? missing("git")) !== undefined,
  async fn() {
    const dir = tempDir();
    try {
      // A repository served as plain files ("dumb" HTTP): git's http_proxy applies.
      const git = (args: string[], cwd: string) =>
        new Deno.Command("git", { args, cwd, stdout: "null", stderr: "piped" }).outputSync();
      Deno.mkdirSync(`${dir}/src`);
      Deno.writeTextFileSync(`${dir}/src/README`, "served\n");
      for (
        const args of [["init", "-q"], ["add", "README"], [
          "-c",
          "user.name=t",
          "-c",
          "user.email=t@t",
          "commit",
          "-q",
          "-m",
          "x",
        ]]
      ) {
        assert.ok(git(args, `${dir}/src`).success);
      }
      assert.ok(git(["clone", "-q", "--bare", "src", "repo.git"], dir).success);
      assert.ok(git(["update-server-info"], `${dir}/repo.git`).success);
      Deno.mkdirSync(`${dir}/work`);
      await withOrigin(async (origin) => {
        origin.serveTree("/repo.git", `${dir}/repo.git`);
        const out = await sandboxed([
          "-s",
          `network-domain=${origin.domain}`,
          "-s",
          "disk-write-cwd",
          "--",
          "git",
          "clone",
          "-q",
          `${origin.url}/repo.git`,
          "clone",
        ], `${dir}/work`);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(Deno.readTextFileSync(`${dir}/work/clone/README`), "served\n");
      });
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason(
    "network-domain: npm installs from a registry through the proxy",
    NO_TCP_RULES ?? missing("npm"),
  ),
  ignore: (NO_TCP_RULES ?? missing("npm")) !== undefined,
  async fn() {
    const dir = tempDir();
    try {
      // A one-package registry: the metadata document and the tarball npm pack makes.
      Deno.mkdirSync(`${dir}/pkg`);
      Deno.writeTextFileSync(
        `${dir}/pkg/package.json`,
        JSON.stringify({ name: "llmx-tiny", version: "1.0.0", main: "index.js" }),
      );
      Deno.writeTextFileSync(`${dir}/pkg/index.js`, "module.exports = 42;\n");
      const packed = new Deno.Command("npm", {
        args: ["pack", "--silent"],
        cwd: `${dir}/pkg`,
        stdout: "piped",
        stderr: "piped",
      }).outputSync();
      assert.ok(packed.success, new TextDecoder().decode(packed.stderr));
      const tarball = Deno.readFileSync(`${dir}/pkg/llmx-tiny-1.0.0.tgz`);
      const digest = await crypto.subtle.digest("SHA-512", tarball);
      const integrity = `sha512-${btoa(String.fromCharCode(...new Uint8Array(digest)))}`;
      Deno.mkdirSync(`${dir}/project`);
      Deno.mkdirSync(`${dir}/cache`);
      Deno.writeTextFileSync(
        `${dir}/project/package.json`,
        JSON.stringify({ name: "p", version: "1.0.0" }),
      );
      await withOrigin(async (origin) => {
        origin.serve("/llmx-tiny/-/llmx-tiny-1.0.0.tgz", tarball);
        origin.serve(
          "/llmx-tiny",
          JSON.stringify({
            name: "llmx-tiny",
            "dist-tags": { latest: "1.0.0" },
            versions: {
              "1.0.0": {
                name: "llmx-tiny",
                version: "1.0.0",
                dist: { tarball: `${origin.url}/llmx-tiny/-/llmx-tiny-1.0.0.tgz`, integrity },
              },
            },
          }),
          "application/json",
        );
        const out = await sandboxed([
          "-s",
          `network-domain=${origin.domain}`,
          "-s",
          "disk-write-cwd",
          "-s",
          `disk-write-folder=${dir}/cache`,
          "--",
          "npm",
          "install",
          "--no-audit",
          "--no-fund",
          "--cache",
          `${dir}/cache`,
          "--registry",
          `${origin.url}/`,
          "llmx-tiny",
        ], `${dir}/project`);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(
          Deno.readTextFileSync(`${dir}/project/node_modules/llmx-tiny/index.js`),
          "module.exports = 42;\n",
        );
        assert.ok(origin.hits.includes("/llmx-tiny/-/llmx-tiny-1.0.0.tgz"), "through the proxy");
      });
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason(
    "network-domain: pip downloads from an index through the proxy",
    NO_TCP_RULES ?? missing("pip3"),
  ),
  ignore: (NO_TCP_RULES ?? missing("pip3")) !== undefined,
  async fn() {
    const dir = tempDir();
    try {
      // A one-wheel "simple" index; the wheel is made by python's zipfile.
      const wheel = `${dir}/llmx_tiny-1.0-py3-none-any.whl`;
      const made = new Deno.Command("python3", {
        args: [
          "-c",
          `import zipfile, sys
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("llmx_tiny/__init__.py", "VALUE = 42\\n")
    z.writestr("llmx_tiny-1.0.dist-info/METADATA", "Metadata-Version: 2.1\\nName: llmx-tiny\\nVersion: 1.0\\n")
    z.writestr("llmx_tiny-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
    z.writestr("llmx_tiny-1.0.dist-info/RECORD", "")`,
          wheel,
        ],
        stderr: "piped",
      }).outputSync();
      assert.ok(made.success, new TextDecoder().decode(made.stderr));
      Deno.mkdirSync(`${dir}/out`);
      await withOrigin(async (origin) => {
        origin.serve("/simple/llmx-tiny/llmx_tiny-1.0-py3-none-any.whl", Deno.readFileSync(wheel));
        origin.serve(
          "/simple/llmx-tiny/",
          '<a href="llmx_tiny-1.0-py3-none-any.whl">llmx_tiny-1.0-py3-none-any.whl</a>\n',
          "text/html",
        );
        const out = await sandboxed([
          "--full-auto",
          "-s",
          `network-domain=${origin.domain}`,
          "--",
          "pip3",
          "download",
          "--no-deps",
          "--no-cache-dir",
          "--disable-pip-version-check",
          "--index-url",
          `${origin.url}/simple/`,
          "-d",
          "out",
          "llmx-tiny",
        ], dir);
        assert.equal(out.code, 0, out.stderr);
        assert.ok(Deno.statSync(`${dir}/out/llmx_tiny-1.0-py3-none-any.whl`).isFile);
      });
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test("network-domain: --explain says what it enforces here; without Landlock TCP rules nothing runs", async () => {
  const out = await runCli(["--explain", "-s", "network-domain=registry.npmjs.org", "--", "true"]);
  const plan = JSON.parse(out.stdout);
  assert.deepEqual(plan.proxy, { allow: ["registry.npmjs.org"], deny: [], port: 0 });
  if (NO_TCP_RULES) {
    assert.equal(out.code, 125, out.stderr);
    assert.equal(plan.runnable, false);
  } else {
    assert.equal(out.code, 0, out.stderr);
    assert.equal(plan.landlock.handledAccessNet, 3, "TCP bind and connect handled");
    assert.ok(
      plan.seccomp.rules.some((rule: { why: string }) => /only TCP sockets/.test(rule.why)),
    );
  }
});
