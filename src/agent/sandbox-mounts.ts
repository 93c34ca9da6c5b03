/**
 * What a bubblewrap sandbox sees: an allowlist of host paths bound read-only (the system's programs
 * and libraries, the `/etc` entries a build needs, the runner's own Node.js installation, paths the
 * deployment adds), the workspace and home writable, a sized private /tmp, fresh /dev and /proc; the
 * rest of the host filesystem (the app's directory, the data directory, other tasks' work
 * directories, /root, /home, /var, /run, /opt, /srv, /mnt, key files) does not exist inside.
 * Paths to protect that fall inside an allowed path get an empty read-only tmpfs over them (or
 * /dev/null for a file). See bwrap(1), https://github.com/containers/bubblewrap.
 */
import { lstatSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Top-level system directories bound read-only (or recreated as the symlinks they are on the host). */
export const SYSTEM_PATHS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/**
 * Entries of /etc bound read-only when they exist: users and groups (passwd, group: for `id`, git,
 * ssh-less tools), name resolution (hosts, resolv.conf, nsswitch.conf, host.conf, gai.conf,
 * services, protocols, networks), TLS trust stores (ssl, ca-certificates*, pki, crypto-policies),
 * the dynamic linker (ld.so.*), Debian alternatives, time zone and locale (localtime, timezone,
 * locale.*), OS identification (os-release, debian_version, lsb-release, alpine-release), MIME
 * types, the system git configuration, and toolchain configuration the packaged toolchains read
 * through symlinks from /usr (python3*, java*, perl). A trailing `*` matches a prefix. Not bound:
 * shadow files, ssh, sudoers, npmrc and pip.conf (they may hold registry credentials; a deployment
 * that needs them adds them with `readOnlyPaths`), profile (it resets PATH for login shells).
 */
const ETC_ENTRIES = [
  'passwd', 'group', 'hosts', 'hostname', 'resolv.conf', 'nsswitch.conf', 'host.conf', 'gai.conf',
  'services', 'protocols', 'networks', 'ssl', 'ca-certificates*', 'pki', 'crypto-policies', 'ld.so.*',
  'alternatives', 'localtime', 'timezone', 'locale.*', 'os-release', 'debian_version', 'lsb-release',
  'alpine-release', 'mime.types', 'gitconfig', 'python3*', 'java*', 'perl',
];

/** Always hidden when visible through an allowed path: private TLS keys of the host. */
const ALWAYS_HIDDEN = ['/etc/ssl/private', '/etc/pki/tls/private'];

/** Thrown when the sandbox cannot be laid out safely (a path to protect is a system directory). */
export class SandboxLayoutError extends Error {
  override name = 'SandboxLayoutError';
}

/** Input of {@link planMounts}. All paths absolute and resolved (realpath) unless said otherwise. */
export interface MountPlanInput {
  workspace: string;
  home: string;
  /**
   * Host paths that must not be visible (the app's directory, the data directory, the work root);
   * may be unresolved or missing (ignored then). Directories get an empty read-only tmpfs, files
   * /dev/null, wherever they fall inside an allowed path or the workspace/home (a protected path
   * that merely contains the workspace or home leaves those visible).
   */
  protect: string[];
  /** Extra host paths to bind read-only (deployment toolchains, registry configuration). */
  readOnlyPaths: string[];
  /** Absolute path of the runner's Node binary as PATH names it (`process.execPath`). */
  nodeExecPath: string;
  /** Size of the private /tmp, bytes. */
  tmpBytes: number;
  /** Size of /dev/shm, bytes. */
  shmBytes: number;
  /**
   * Host unix sockets bound read-only at the given absolute in-sandbox paths (connecting needs no
   * write access), e.g. the agent proxy's relay socket. Default none.
   */
  sockets?: { source: string; target: string }[];
}

/** One bwrap mount operation and where it lands. */
interface Mount {
  target: string;
  /** Order among mounts at the same depth: 0 fresh filesystems, 1 allowed binds, 2 masks, 3 re-binds, 4 writable binds. */
  order: number;
  args: string[];
  /** Made read-only after everything is mounted (masks: empty tmpfs). */
  remountRo?: boolean;
}

function depth(p: string): number {
  return p === '/' ? 0 : p.split('/').length - 1;
}

/** Whether `child` is `parent` or inside it. */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function tryRealpath(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

/** /etc entries named by {@link ETC_ENTRIES} that exist on the host (dangling symlinks skipped). */
function etcEntries(): string[] {
  let names: string[];
  try {
    names = readdirSync('/etc');
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const pattern of ETC_ENTRIES) {
    const matches = pattern.endsWith('*') ? names.filter((n) => n.startsWith(pattern.slice(0, -1))) : names.filter((n) => n === pattern);
    for (const n of matches.sort()) if (tryRealpath(`/etc/${n}`) !== undefined) found.push(`/etc/${n}`);
  }
  return found;
}

/**
 * The bwrap mount arguments for one sandbox, ordered parent-first (bwrap creates mount points as it
 * goes), ending with `--remount-ro` of the sandbox root and of every mask so nothing outside the
 * workspace, home, /tmp and /dev/shm is writable.
 * @throws SandboxLayoutError when a protected path is or contains a system directory the sandbox
 *   needs (e.g. a data directory of `/usr`): no safe layout exists, the runner must refuse.
 * @throws TypeError for a relative read-only path.
 */
export function planMounts(input: MountPlanInput): string[] {
  const mounts: Mount[] = [
    { target: '/dev', order: 0, args: ['--dev', '/dev'], remountRo: true },
    { target: '/dev/shm', order: 0, args: ['--size', String(input.shmBytes), '--tmpfs', '/dev/shm'] },
    { target: '/proc', order: 0, args: ['--proc', '/proc'] },
    { target: '/tmp', order: 0, args: ['--size', String(input.tmpBytes), '--tmpfs', '/tmp'] },
  ];
  /** Host sources visible read-only: [source, target]. */
  const visible: { source: string; target: string }[] = [];
  const bindRo = (source: string, target: string, order: number): void => {
    if (mounts.some((m) => m.target === target)) return;
    mounts.push({ target, order, args: ['--ro-bind', source, target] });
    visible.push({ source, target });
  };

  for (const p of SYSTEM_PATHS) {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) {
      if (tryRealpath(p) !== undefined) mounts.push({ target: p, order: 1, args: ['--symlink', readlinkSync(p), p] });
    } else if (st.isDirectory()) {
      bindRo(p, p, 1);
    }
  }
  for (const p of etcEntries()) bindRo(realpathSync(p), p, 1);

  // The runner's own Node.js stays reachable wherever it is installed (e.g. the `node` npm package
  // inside the app's node_modules): its PATH directory and the installation it belongs to, and
  // nothing around them.
  const nodeBin = path.dirname(input.nodeExecPath);
  const nodeReal = tryRealpath(input.nodeExecPath);
  const nodeDirs = [nodeBin, ...(nodeReal ? [path.dirname(nodeReal), path.dirname(path.dirname(nodeReal))] : [])]
    .sort((a, b) => depth(a) - depth(b));
  // Bound even when an allowed directory already shows them: a hidden path around them (the app's
  // directory under /usr/local, say) must not take them away.
  for (const dir of nodeDirs) {
    const real = tryRealpath(dir);
    if (real === undefined || real === '/' || SYSTEM_PATHS.includes(dir)) continue;
    bindRo(real, dir, 3);
  }
  for (const p of input.readOnlyPaths) {
    if (!path.isAbsolute(p) || p.includes('\0')) throw new TypeError(`read-only path must be absolute, got ${JSON.stringify(p)}`);
    const real = tryRealpath(p);
    if (real === undefined || real === '/') continue;
    bindRo(real, path.resolve(p), 3);
  }

  const writable = [...new Set([input.workspace, input.home])];
  // Masks: a protected path is hidden wherever it shows up inside a visible source (under its
  // in-sandbox name), inside the workspace or home, or under its own name.
  const masks = new Set<string>();
  for (const raw of [...input.protect, ...ALWAYS_HIDDEN]) {
    if (!path.isAbsolute(raw)) throw new TypeError(`protected path must be absolute, got ${JSON.stringify(raw)}`);
    const real = tryRealpath(raw);
    if (real === undefined || real === '/') continue;
    for (const s of [...SYSTEM_PATHS, '/etc']) {
      if (isInside(real, s) || isInside(real, tryRealpath(s) ?? s)) {
        throw new SandboxLayoutError(`${raw} must not be hidden from the sandbox: it is or contains the system directory ${s}; move it elsewhere`);
      }
    }
    for (const v of [...visible, ...writable.map((w) => ({ source: w, target: w }))]) {
      if (isInside(v.source, real) && !(writable.includes(v.source) && real === v.source)) {
        masks.add(path.join(v.target, path.relative(v.source, real)));
      }
    }
  }
  for (const m of masks) {
    let dir = true;
    try {
      dir = statSync(m).isDirectory();
    } catch {
      // Seen through a bind only; the source decided above that it exists.
    }
    // A mask equal to an allowed bind wins over it (same depth, later order).
    mounts.push(dir
      ? { target: m, order: 2, args: ['--tmpfs', m], remountRo: true }
      : { target: m, order: 2, args: ['--ro-bind', '/dev/null', m] });
  }
  for (const m of masks) {
    for (let i = mounts.length - 1; i >= 0; i--) {
      const mount = mounts[i]!;
      if (mount.target === m && mount.order === 3) mounts.splice(i, 1);
    }
  }

  for (const w of writable) mounts.push({ target: w, order: 4, args: ['--bind', w, w] });
  for (const { source, target } of input.sockets ?? []) {
    if (!path.isAbsolute(source) || !path.isAbsolute(target)) throw new TypeError(`socket paths must be absolute, got ${JSON.stringify(source)} -> ${JSON.stringify(target)}`);
    mounts.push({ target, order: 4, args: ['--ro-bind', source, target] });
  }
  if (!visible.some((v) => isInside(v.target, '/var'))) {
    mounts.push({ target: '/var/tmp', order: 1, args: ['--symlink', '../tmp', '/var/tmp'] });
  }

  mounts.sort((a, b) => depth(a.target) - depth(b.target) || a.order - b.order);
  const args = mounts.flatMap((m) => m.args);
  for (const m of mounts) if (m.remountRo) args.push('--remount-ro', m.target);
  args.push('--remount-ro', '/');
  return args;
}

/** Root of this package (the app's installation directory), from this file's place in src/ or dist/. */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The host paths a runner hides from its sandboxes: its working directory (the app's, with `.env`
 * and key files, for the local backend), the app's installation directory, the work root holding
 * every task's work directory (`dirname(workDir)`), and the data directory (`CODEX_DATA_DIR` when
 * set, and the parent of a work root named `work`, the app's `<data dir>/work/<task>` layout), and the
 * absolute paths in `CODEX_SANDBOX_HIDE_PATHS` (`:`-separated; the local backend sets the app's cwd).
 * Paths inside the workspace (a checkout worked on in place) are left out: they are the work.
 * @param workDir absolute work directory of the task.
 * @param workspace absolute workspace (the checkout).
 * @param cwd the runner's working directory (`process.cwd()`).
 * @param env the runner's environment (`process.env`).
 */
export function runnerHiddenPaths(workDir: string, workspace: string, cwd: string, env: NodeJS.ProcessEnv): string[] {
  const workRoot = path.dirname(path.resolve(workDir));
  const paths = [cwd, PACKAGE_ROOT, workRoot];
  if (path.basename(workRoot) === 'work') paths.push(path.dirname(workRoot));
  if (env.CODEX_DATA_DIR) paths.push(path.resolve(cwd, env.CODEX_DATA_DIR));
  // Set by the local backend: the app's working directory, wherever the runner itself starts.
  for (const p of (env.CODEX_SANDBOX_HIDE_PATHS ?? '').split(':')) if (path.isAbsolute(p)) paths.push(p);
  const ws = tryRealpath(workspace) ?? workspace;
  return [...new Set(paths)].filter((p) => p !== '/' && !isInside(ws, tryRealpath(p) ?? p));
}

/**
 * Extra read-only paths from `CODEX_SANDBOX_RO_PATHS` (absolute paths separated by `:`), e.g.
 * `/opt/toolchains:/etc/pip.conf`.
 * @throws TypeError for a relative entry.
 */
export function readOnlyPathsFromEnv(env: NodeJS.ProcessEnv): string[] {
  const list = (env.CODEX_SANDBOX_RO_PATHS ?? '').split(':').filter((p) => p !== '');
  for (const p of list) {
    if (!path.isAbsolute(p)) throw new TypeError(`CODEX_SANDBOX_RO_PATHS: ${JSON.stringify(p)} is not an absolute path`);
  }
  return list;
}
