import assert from "node:assert/strict";
import { posix } from "node:path";
import { isAbsolute, resolve } from "../policy/_path.ts";

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
