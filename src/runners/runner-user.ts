/**
 * The user the local runner runs as (`CODEX_RUNNER_USER`). With a user other than the app's, an
 * escape from the sandbox lands in a process that cannot read the app's environment
 * (`/proc/<app pid>/environ` needs the same uid), its data directory or its key files.
 *
 * What the deployment must provide (README, "Running the local runner as another user"):
 * - the app runs as root (or with CAP_SETUID and CAP_SETGID), so that it can start processes as
 *   another user; an unprivileged user for the runner exists (e.g. `useradd --system codex-runner`),
 *   sharing no group with the app;
 * - the runner program is readable by that user: Node.js, the package's `dist/` (or `src/`) and
 *   `node_modules/` (world-readable, as in the Docker image);
 * - the data directory's ancestors are searchable by it (`o+x`); the app makes the data directory
 *   itself search-only for others and its files private ({@link hideFromRunnerUser});
 * - unprivileged user namespaces are enabled (`kernel.unprivileged_userns_clone=1` where that
 *   switch exists), so that bubblewrap works without being setuid;
 * - key files and `.env` outside the data directory are private to the app (mode 0600).
 */
import { execFile } from 'node:child_process';
import { chmod, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

/** Numeric ids of the runner's user; `name` as configured, when it was a name. */
export interface RunnerUser {
  uid: number;
  gid: number;
  name?: string;
}

/** Thrown when `CODEX_RUNNER_USER` names no usable user, or the host cannot start processes as it. */
export class RunnerUserError extends Error {
  override name = 'RunnerUserError';
}

const run = promisify(execFile);

/**
 * Resolves `CODEX_RUNNER_USER`: `uid:gid` as given, or a user name through `getent passwd` (so NSS
 * sources such as LDAP count), with that user's primary group.
 * @throws RunnerUserError when the name is unknown, or the user or group is root (id 0).
 */
export async function resolveRunnerUser(value: string): Promise<RunnerUser> {
  const numeric = /^(\d+):(\d+)$/.exec(value);
  let user: RunnerUser;
  if (numeric) {
    user = { uid: Number(numeric[1]), gid: Number(numeric[2]) };
  } else {
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(value)) throw new RunnerUserError(`CODEX_RUNNER_USER: not a user name: ${JSON.stringify(value)}`);
    const entry = await run('getent', ['passwd', value], { encoding: 'utf8' }).then(
      (out) => out.stdout.split('\n')[0] ?? '',
      () => '',
    );
    const fields = entry.split(':');
    if (fields.length < 4 || fields[0] !== value) {
      throw new RunnerUserError(`CODEX_RUNNER_USER: there is no user ${JSON.stringify(value)} on this host (getent passwd ${value})`);
    }
    user = { uid: Number(fields[2]), gid: Number(fields[3]), name: value };
  }
  if (!Number.isSafeInteger(user.uid) || !Number.isSafeInteger(user.gid)) throw new RunnerUserError(`CODEX_RUNNER_USER: invalid ids in ${JSON.stringify(value)}`);
  if (user.uid === 0 || user.gid === 0) throw new RunnerUserError(`CODEX_RUNNER_USER: ${JSON.stringify(value)} is root (uid or gid 0); use an unprivileged user`);
  return user;
}

/**
 * The first directory on the way to `dir` (from `/`, `dir` included) that `user` cannot search
 * (execute permission by owner, group or others bits; supplementary groups are not considered, the
 * runner runs without them), or undefined when it can reach `dir`.
 */
export async function unreachableDirectory(dir: string, user: RunnerUser): Promise<string | undefined> {
  const absolute = path.resolve(dir);
  const chain: string[] = [];
  for (let p = absolute; ; p = path.dirname(p)) {
    chain.unshift(p);
    if (p === path.dirname(p)) break;
  }
  for (const p of chain) {
    const info = await stat(p);
    const bit = info.uid === user.uid ? 0o100 : info.gid === user.gid ? 0o010 : 0o001;
    if ((info.mode & bit) === 0) return p;
  }
  return undefined;
}

/**
 * Keeps the app's data directory from the runner's user while letting it reach its work root:
 * `dataDir` becomes search-only for group and others (mode 0711: its entries can be reached by
 * name but not listed), and every entry in it except `workRoot` loses its group and others
 * permissions (the SQLite store and its `-wal`/`-shm` files, which SQLite creates with the store's
 * mode, logs). The work root itself is handled by the backend (mode 0711, one 0700 directory per
 * task owned by the runner's user).
 * @param runnerFiles files the runner's user must keep reading (Node.js, the runner program): when
 *   one is inside `dataDir`, nothing is changed and a RunnerUserError is thrown.
 * @throws RunnerUserError when `dataDir` holds one of `runnerFiles`; Error from the file system
 *   (e.g. EPERM when the app does not own `dataDir`).
 */
export async function hideFromRunnerUser(dataDir: string, workRoot: string, runnerFiles: string[] = []): Promise<void> {
  const root = path.resolve(dataDir);
  const keep = path.resolve(workRoot);
  const inside = runnerFiles.find((file) => {
    const relative = path.relative(root, path.resolve(file));
    return relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative);
  });
  if (inside !== undefined) {
    throw new RunnerUserError(
      `CODEX_DATA_DIR (${root}) holds ${inside}, which the runner's user must read; use a data directory of its own`,
    );
  }
  await chmod(root, 0o711);
  for (const name of await readdir(root)) {
    const entry = path.join(root, name);
    if (entry === keep) continue;
    const info = await stat(entry);
    await chmod(entry, info.mode & 0o7700);
  }
}

/**
 * Checks at start-up that this process can start programs as `user`, that the user can run
 * `nodePath` (Node.js, which runs the runner) and read each of `files` (e.g. the runner's entry
 * point): starts `node -e <check> <files…>` as that user.
 * @throws RunnerUserError naming the cause (EPERM: the app is not root and lacks CAP_SETUID /
 *   CAP_SETGID; EACCES: Node.js is not executable by that user; or the first file it cannot read).
 */
export async function assertCanRunAs(user: RunnerUser, nodePath: string, files: string[] = []): Promise<void> {
  const check = "const fs = require('node:fs'); for (const f of process.argv.slice(1)) { try { fs.accessSync(f, fs.constants.R_OK); } catch { console.log(f); process.exit(3); } }";
  try {
    await run(nodePath, ['-e', check, ...files], { uid: user.uid, gid: user.gid, cwd: '/', env: {}, timeout: 30_000, encoding: 'utf8' });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stdout?: string };
    const code = failure.code as unknown;
    const why =
      code === 'EPERM'
        ? 'this process may not switch users (run the app as root, or give it CAP_SETUID and CAP_SETGID)'
        : code === 'EACCES'
          ? `${nodePath} is not executable by that user`
          : code === 3
            ? `it cannot read ${failure.stdout?.trim()} (the runner program must be readable by that user)`
            : failure.message;
    throw new RunnerUserError(`CODEX_RUNNER_USER: cannot start the runner as uid ${user.uid} gid ${user.gid}: ${why}`);
  }
}
