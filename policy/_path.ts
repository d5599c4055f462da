// POSIX `isAbsolute` and `resolve`, as node:path's posix flavour defines them. The planner runs
// at every CLI start, where loading node:path (and with it Node compatibility) costs ~13 ms.

/**
 * Whether a path is absolute.
 * @param path A POSIX path.
 * @returns `true` when it starts with `/`.
 */
export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/**
 * Resolves paths right to left until one is absolute (else against the current folder), then
 * removes `.`, `..`, repeated and trailing slashes, as `node:path`'s `resolve` does.
 * @param paths The paths; empty ones are ignored.
 * @returns A normalised absolute path.
 */
export function resolve(...paths: string[]): string {
  let joined = "";
  for (let i = paths.length - 1; i >= -1; i--) {
    const path = i >= 0 ? paths[i] : Deno.cwd();
    if (path.length === 0) continue;
    joined = `${path}/${joined}`;
    if (isAbsolute(path)) break;
  }
  const parts: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}
