import assert from "node:assert/strict";
import { posix } from "node:path";
import { basename, dirname, isAbsolute, join, resolve } from "../policy/_path.ts";

const CASES: string[][] = [
  [],
  [""],
  ["/"],
  ["//"],
  ["/a/b/"],
  ["/a//b/./c/.."],
  ["/a/b", "../../../.."],
  ["/a", "b", "c/"],
  ["/a", "/b", "c"],
  ["/a", "", "b"],
  ["relative"],
  ["relative/../.."],
  ["./x/./y/"],
  ["/a", "..."],
  ["/a", ".hidden/..x"],
  ["/tmp", "a b", "ü"],
];

Deno.test("resolve() matches node:path's posix resolve", () => {
  for (const paths of CASES) {
    assert.equal(resolve(...paths), posix.resolve(...paths), JSON.stringify(paths));
  }
});

Deno.test("isAbsolute() matches node:path's posix isAbsolute", () => {
  for (const path of ["", "/", "a", "./a", "//a", " /a"]) {
    assert.equal(isAbsolute(path), posix.isAbsolute(path), JSON.stringify(path));
  }
});

// Repeated slashes inside a path are left out: node keeps one of them ("/a//b" gives "/a/"),
// and the planner only meets canonical paths.
const SINGLE = [
  "",
  "/",
  "//",
  "a",
  "a/",
  "/a",
  "/a/",
  "/a/b",
  "/a/b/",
  "a/b",
  "./a",
  "../a/b",
  "/.pyenv/shims/python3",
];

Deno.test("dirname() and basename() match node:path's posix ones", () => {
  for (const path of SINGLE) {
    assert.equal(dirname(path), posix.dirname(path), `dirname ${JSON.stringify(path)}`);
    assert.equal(basename(path), posix.basename(path), `basename ${JSON.stringify(path)}`);
  }
});

Deno.test("join() matches node:path's posix join", () => {
  for (
    const paths of [...CASES, ["a", "..", ".."], ["/x", "llmx-sandbox", "config.json"], ["a", "b/"]]
  ) {
    assert.equal(join(...paths), posix.join(...paths), JSON.stringify(paths));
  }
});
