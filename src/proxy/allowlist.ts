/**
 * Host allowlists of the agent-phase network policy (`agent_network.allow` in `.github/codex.yml`):
 * each entry is an exact host name (`pypi.org`) or a suffix wildcard (`*.pythonhosted.org`, which
 * matches `files.pythonhosted.org` and `a.b.pythonhosted.org` but not `pythonhosted.org` itself).
 * Names only: IP addresses and a bare `*` are not entries, so a policy always names what it allows.
 * Comparison is case-insensitive and ignores a trailing dot (`PyPI.org.` is `pypi.org`).
 */

/** One DNS label: letters, digits, hyphens inside, 1..63 characters (RFC 1123). */
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
/** A host name of two or more labels whose last label is not all digits (not an IPv4 address). */
const HOST = new RegExp(`^(?:${LABEL}\\.)+(?=[a-z0-9-]*[a-z])${LABEL}$`);

/** Longest host name, characters (RFC 1035). */
const MAX_HOST_LENGTH = 253;

/** Lower-cases a host name and drops one trailing dot. */
export function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * Why `pattern` is not a valid allowlist entry, or undefined when it is one.
 * @param pattern an entry as written, e.g. `pypi.org` or `*.pythonhosted.org`.
 * @returns a message fit to follow the entry's name, e.g. `must be a host name such as pypi.org or *.pythonhosted.org`.
 */
export function hostPatternProblem(pattern: string): string | undefined {
  const p = normalizeHost(pattern.trim());
  if (p === '*' || p === '*.') return 'must name hosts: a bare * would allow the whole internet';
  const name = p.startsWith('*.') ? p.slice(2) : p;
  if (name.length > MAX_HOST_LENGTH) return `must be at most ${MAX_HOST_LENGTH} characters`;
  if (/^[\d.]+$/.test(name) || name.includes(':') || name.startsWith('[')) return 'must be a host name, not an IP address';
  if (!HOST.test(name)) return 'must be a host name such as pypi.org or *.pythonhosted.org (letters, digits, hyphens and dots; a wildcard only as a leading *.)';
  return undefined;
}

/** A validated allowlist; see the module comment for the matching rules. */
export class HostAllowlist {
  readonly #exact = new Set<string>();
  readonly #suffixes: string[] = [];

  /**
   * @param patterns entries such as `pypi.org`, `*.pythonhosted.org` (may be empty: nothing allowed).
   * @throws RangeError naming the first invalid entry (see {@link hostPatternProblem}).
   */
  constructor(patterns: readonly string[]) {
    for (const raw of patterns) {
      const problem = hostPatternProblem(raw);
      if (problem !== undefined) throw new RangeError(`allowlist entry ${JSON.stringify(raw)} ${problem}`);
      const p = normalizeHost(raw.trim());
      if (p.startsWith('*.')) this.#suffixes.push(p.slice(1));
      else this.#exact.add(p);
    }
  }

  /** Whether `host` (a name as a client sent it; any case, optional trailing dot) is allowed. */
  allows(host: string): boolean {
    const h = normalizeHost(host);
    if (this.#exact.has(h)) return true;
    return this.#suffixes.some((suffix) => h.length > suffix.length && h.endsWith(suffix));
  }
}
