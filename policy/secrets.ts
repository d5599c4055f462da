/**
 * What full read hides: the places credentials are kept, in the home folders and the system,
 * decided once from the filesystem as it is. The one list of them, with why each is there.
 *
 * @module
 */

import { isAbsolute, resolve } from "./_path.ts";
import { isWithin } from "./read_scope.ts";

/** A credential location, relative to a home folder. */
export interface SecretLocation {
  /** The path beneath the home folder. */
  path: string;
  /** What it holds, for the README and `--explain`. */
  why: string;
}

/** Hidden in the caller's home folder and in `/root`, when they exist. */
export const HOME_SECRETS: readonly SecretLocation[] = [
  { path: ".ssh", why: "SSH private keys, and the hosts and accounts they open" },
  { path: ".gnupg", why: "GnuPG private keys and the agent's socket" },
  { path: ".aws", why: "AWS access keys (credentials, config with SSO tokens)" },
  { path: ".azure", why: "Azure CLI tokens" },
  { path: ".config/gcloud", why: "Google Cloud credentials and access tokens" },
  { path: ".kube", why: "Kubernetes cluster credentials (kubeconfig)" },
  { path: ".docker/config.json", why: "registry passwords and tokens" },
  { path: ".netrc", why: "passwords for FTP, HTTP (curl, git) and more" },
  { path: ".git-credentials", why: "git's stored HTTPS passwords and tokens" },
  { path: ".config/git/credentials", why: "git's stored passwords, at its XDG location" },
  { path: ".config/gh", why: "the GitHub CLI's token" },
  { path: ".npmrc", why: "npm registry tokens" },
  { path: ".pypirc", why: "PyPI upload tokens" },
  { path: ".cargo/credentials", why: "crates.io tokens (old name)" },
  { path: ".cargo/credentials.toml", why: "crates.io tokens" },
  { path: ".password-store", why: "pass, the password manager" },
  { path: ".local/share/keyrings", why: "GNOME keyrings (saved passwords)" },
  { path: ".pgpass", why: "PostgreSQL passwords" },
  { path: ".my.cnf", why: "MySQL passwords" },
  { path: ".config/containers/auth.json", why: "Podman and Buildah registry passwords" },
  { path: ".vault-token", why: "HashiCorp Vault's token" },
  { path: ".terraform.d/credentials.tfrc.json", why: "Terraform Cloud tokens" },
];

/** System files that hold secrets, hidden when they exist. */
export const SYSTEM_SECRETS: readonly SecretLocation[] = [
  { path: "/etc/shadow", why: "password hashes" },
  { path: "/etc/gshadow", why: "group password hashes" },
  { path: "/etc/shadow-", why: "password hashes: the shadow tools' backup" },
  { path: "/etc/gshadow-", why: "group password hashes: the shadow tools' backup" },
  { path: "/etc/security/opasswd", why: "old password hashes (pam_pwhistory)" },
  { path: "/var/backups/shadow.*", why: "password hashes: the daily backup" },
  { path: "/var/backups/gshadow.*", why: "group password hashes: the daily backup" },
  { path: "/etc/ssh/ssh_host_*_key", why: "the SSH server's private host keys" },
  { path: "/etc/ssl/private", why: "TLS private keys" },
];

/** What the resolver asks of the system. */
export interface SecretsHost {
  /** The canonical path, or `undefined` when nothing is there. */
  realPath(path: string): string | undefined;
  /** The names in a folder, or `undefined` when it cannot be listed. */
  readDir(path: string): string[] | undefined;
}

/** Where to look, and what the user added and removed. */
export interface SecretsInput {
  /** Home folders whose credential locations are hidden: the caller's and `/root`. */
  homes: readonly string[];
  /** Home folders hidden as a whole (other users', when running as root). */
  otherHomes: readonly string[];
  /** `--hide` paths, absolute. */
  hide: readonly string[];
  /** `--show` paths, absolute: removes what lies inside or equal, keeps re-readable what lies inside a hidden one. */
  show: readonly string[];
}

/** The hidden paths, canonical, and what `--show` opens again inside them. */
export interface ResolvedSecrets {
  /** Canonical paths read nowhere beneath (sorted, none inside another). */
  hidden: string[];
  /** Canonical paths shown inside a hidden one (readable again). */
  shown: string[];
  /** `--hide` and `--show` paths where nothing is (or nothing can be reached), as given. */
  nowhere: string[];
}

/**
 * Resolves the hidden locations on this system: each that exists, symlinks followed (a hidden
 * location is hidden where it really is), minus what `--show` removes.
 *
 * @example
 * ```ts
 * import { resolveSecrets } from "./secrets.ts";
 * import assert from "node:assert/strict";
 *
 * const existing = new Set(["/h/.ssh", "/h/.aws", "/etc/shadow", "/etc/ssh"]);
 * const host = {
 *   realPath: (path: string) => existing.has(path) ? path : undefined,
 *   readDir: (path: string) => path === "/etc/ssh" ? ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"] : undefined,
 * };
 * const { hidden } = resolveSecrets({ homes: ["/h"], otherHomes: [], hide: [], show: ["/h/.aws"] }, host);
 * assert.deepEqual(hidden, ["/etc/shadow", "/h/.ssh"]);
 * ```
 *
 * @param input Where to look and what the user changed.
 * @param host The filesystem.
 * @returns The hidden paths and the shown ones inside them.
 */
export function resolveSecrets(input: SecretsInput, host: SecretsHost): ResolvedSecrets {
  const wanted: string[] = [];
  for (const home of input.homes) {
    for (const secret of HOME_SECRETS) wanted.push(`${home === "/" ? "" : home}/${secret.path}`);
  }
  for (const secret of SYSTEM_SECRETS) wanted.push(...expandGlob(secret.path, host));
  wanted.push(...input.otherHomes, ...input.hide);
  // Most built-in locations do not exist: a listing of their folder (one call each) says so
  // without a failed lookup apiece, which costs an error object each.
  const listings = new Map<string, Set<string> | undefined>();
  const listed = (path: string): boolean => {
    const slash = path.lastIndexOf("/");
    const name = path.slice(slash + 1);
    if (name === "" || name === "." || name === "..") return true;
    const folder = path.slice(0, slash) || "/";
    if (!listings.has(folder)) {
      const names = host.readDir(folder);
      listings.set(folder, names && new Set(names));
    }
    const names = listings.get(folder);
    // A folder that cannot be listed: look the path up all the same.
    return names === undefined || names.has(name);
  };
  const real = (path: string) => {
    const absolute = isAbsolute(path) ? path : resolve(path);
    return listed(absolute) ? host.realPath(absolute) : undefined;
  };
  const nowhere = [...input.hide, ...input.show].filter((path) => real(path) === undefined);
  const shows = input.show.flatMap((path) => real(path) ?? []);
  const candidates = [...new Set(wanted.flatMap((path) => real(path) ?? []))]
    .filter((path) => path !== "/" && !shows.some((show) => isWithin(path, show)));
  const hidden = candidates
    .filter((path) => !candidates.some((other) => other !== path && isWithin(path, other)))
    .sort();
  const shown = shows.filter((show) =>
    hidden.some((path) => isWithin(show, path) && show !== path)
  );
  return { hidden, shown: [...new Set(shown)].sort(), nowhere };
}

/** `/etc/ssh/ssh_host_*_key`: one `*` in the last segment, matched against the folder's names. */
function expandGlob(pattern: string, host: SecretsHost): string[] {
  const slash = pattern.lastIndexOf("/");
  const name = pattern.slice(slash + 1);
  const star = name.indexOf("*");
  if (star === -1) return [pattern];
  const folder = pattern.slice(0, slash);
  const [before, after] = [name.slice(0, star), name.slice(star + 1)];
  return (host.readDir(folder) ?? [])
    .filter((entry) =>
      entry.length >= before.length + after.length && entry.startsWith(before) &&
      entry.endsWith(after)
    )
    .map((entry) => `${folder}/${entry}`);
}
