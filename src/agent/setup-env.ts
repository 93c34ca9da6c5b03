/**
 * What the setup phase (and only the setup phase) takes from the runner's environment so that
 * dependency installs work on real networks: the standard CA-bundle and proxy variables, the
 * variables the operator names in `CODEX_SETUP_ENV`, and the CA files and directories those
 * variables point at, bound read-only into the sandbox. The agent phase gets none of this.
 *
 * `CODEX_SETUP_ENV` is for plain configuration (a registry mirror: `npm_config_registry`,
 * `PIP_INDEX_URL`, `GOPROXY`, …), never for secrets: the setup phase runs the repository's own
 * script and install hooks, which can read and send anything in their environment. Names that look
 * like secrets (containing TOKEN, SECRET, PASSWORD, KEY, CREDENTIAL, AUTH, …) are refused.
 * npm needs no `cafile` of its own: it runs on Node.js, which adds `NODE_EXTRA_CA_CERTS` to its
 * trust store (checked end to end with npm 11 in test/agent/setup-network.test.ts); pip reads
 * `PIP_CERT`/`REQUESTS_CA_BUNDLE`, git `GIT_SSL_CAINFO`, curl `CURL_CA_BUNDLE`, OpenSSL-based tools
 * `SSL_CERT_FILE`/`SSL_CERT_DIR`.
 * A proxy URL with a password in it (`http://user:pass@proxy:3128`) is visible to the setup phase in
 * the same way: prefer a proxy that authenticates the host instead.
 */
import path from 'node:path';

/** Variables naming a CA bundle file or a directory of CA certificates; the files are bound read-only. */
export const SETUP_CA_VARIABLES = [
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'REQUESTS_CA_BUNDLE',
  'PIP_CERT',
  'CURL_CA_BUNDLE',
  'GIT_SSL_CAINFO',
] as const;

/** Proxy variables, in both spellings the tools read. */
export const SETUP_PROXY_VARIABLES = ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'] as const;

/** Names `CODEX_SETUP_ENV` may not pass: anything that looks like a credential. */
const SECRET_NAME = /TOKEN|SECRET|PASS(?:WORD|WD)?(?:_|$)|(?:^|_)KEY(?:_|$)|API_?KEY|PRIVATE|CREDENTIAL|AUTH|SESSION|COOKIE/i;

/** A valid environment variable name (POSIX portable: letters, digits, underscore; no leading digit). */
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Names the runner itself owns, which `CODEX_SETUP_ENV` cannot override. */
const RESERVED = new Set(['PATH', 'HOME', 'TMPDIR', 'VIRTUAL_ENV']);

/** Result of {@link setupEnvironment}. */
export interface SetupEnvironment {
  /** Variables to add to the setup phase's sandbox environment. */
  env: Record<string, string>;
  /** Absolute host paths (CA files and directories) to bind read-only into the setup sandbox. */
  readOnlyPaths: string[];
  /** Names refused from `CODEX_SETUP_ENV`, each with why (for a warning in the task log). */
  refused: string[];
}

/**
 * The names listed in `CODEX_SETUP_ENV`: separated by commas, spaces or colons.
 * @returns the valid names to pass and the refused ones with the reason.
 */
export function parseSetupEnvNames(list: string | undefined): { names: string[]; refused: string[] } {
  const names: string[] = [];
  const refused: string[] = [];
  for (const name of (list ?? '').split(/[\s,:]+/).filter(Boolean)) {
    if (!VARIABLE_NAME.test(name)) refused.push(`${name}: not a variable name`);
    else if (RESERVED.has(name)) refused.push(`${name}: set by the runner`);
    else if (SECRET_NAME.test(name)) refused.push(`${name}: looks like a secret; CODEX_SETUP_ENV never passes secrets`);
    else if (!names.includes(name)) names.push(name);
  }
  return { names, refused };
}

/**
 * The setup phase's additions from the runner's environment `env` (`process.env`): the set ones
 * among {@link SETUP_CA_VARIABLES}, {@link SETUP_PROXY_VARIABLES} and the names in
 * `CODEX_SETUP_ENV`; and the absolute paths the CA variables name, as read-only paths
 * (`SSL_CERT_DIR` may list several directories separated by `:`, as OpenSSL reads it).
 * Values with a NUL byte and relative CA paths are dropped (a relative path means nothing in the
 * sandbox), the latter reported in `refused`.
 */
export function setupEnvironment(env: NodeJS.ProcessEnv): SetupEnvironment {
  const out: Record<string, string> = {};
  const readOnlyPaths: string[] = [];
  const { names, refused } = parseSetupEnvNames(env.CODEX_SETUP_ENV);
  for (const name of [...SETUP_CA_VARIABLES, ...SETUP_PROXY_VARIABLES, ...names]) {
    const value = env[name];
    if (value === undefined || value === '' || value.includes('\0')) continue;
    out[name] = value;
  }
  for (const name of SETUP_CA_VARIABLES) {
    const value = out[name];
    if (value === undefined) continue;
    const paths = name === 'SSL_CERT_DIR' ? value.split(':').filter(Boolean) : [value];
    if (!paths.every((p) => path.isAbsolute(p))) {
      delete out[name];
      refused.push(`${name}: ${JSON.stringify(value)} is not an absolute path`);
      continue;
    }
    for (const p of paths) if (!readOnlyPaths.includes(p)) readOnlyPaths.push(p);
  }
  return { env: out, readOnlyPaths, refused };
}
