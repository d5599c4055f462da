// POSIX `isAbsolute`, `resolve`, `dirname`, `basename` and `join`, as node:path's posix flavour
// defines them for the paths we handle. The planner runs
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

/**
 * The folder part of a path.
 * @param path A POSIX path.
 * @returns Everything before the last segment (`/` for a top-level path, `.` for a bare name).
 */
export function dirname(path: string): string {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (trimmed === "" && path !== "") return "/";
  const slash = trimmed.lastIndexOf("/");
  if (slash === -1) return ".";
  if (slash === 0) return "/";
  return trimmed.slice(0, slash).replace(/\/+$/, "") || "/";
}

/**
 * The last segment of a path.
 * @param path A POSIX path.
 * @returns The name after the last slash, trailing slashes ignored.
 */
export function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/**
 * Joins segments with slashes and normalises the result (relative stays relative).
 * @param paths The segments.
 * @returns The joined path.
 */
export function join(...paths: string[]): string {
  const joined = paths.filter((path) => path.length > 0).join("/");
  if (joined === "") return ".";
  const absolute = isAbsolute(joined);
  const parts: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === ".." && parts.length > 0 && parts[parts.length - 1] !== "..") parts.pop();
    else if (part !== ".." || !absolute) parts.push(part);
  }
  const body = parts.join("/") + (joined.endsWith("/") && parts.length > 0 ? "/" : "");
  return absolute ? `/${body}` : body || ".";
}
