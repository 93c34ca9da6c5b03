/**
 * The AGENTS.md files of a pull request's BASE commit, read from git objects in the checkout (never
 * from the working tree, which holds the untrusted head). A review takes its repository guidelines
 * from these (DESIGN.md, "Review"). Call it before the agent phase: once the agent has run commands,
 * the checkout's `.git` is no longer the runner's own.
 */
import { git } from './git.ts';
import { AGENTS_MD_MAX_BYTES, type AgentsDoc } from './instructions.ts';

/** AGENTS.md files read at most (the shallowest first). */
const MAX_FILES = 64;

/**
 * Every regular file named `AGENTS.md` in the tree of `baseSha`, shallowest first (the root's first),
 * then by path; symlinks and submodules are skipped. Contents are cut so that all files together stay
 * within {@link AGENTS_MD_MAX_BYTES} (files past the budget are left out; the one that crosses it is
 * cut with a marker).
 * @param repoRoot the checkout (its git directory must hold `baseSha`'s objects).
 * @param baseSha the pull request's base (or merge base) commit, 40 hex.
 * @param gitDir the checkout's git directory when it is not `<repoRoot>/.git` (the runner's private
 *   one, outside the workspace: passed as `--git-dir`, so the agent's `.git` is never read).
 * @throws GitError when git cannot read the commit (e.g. not fetched).
 * @throws Error when `baseSha` is not a 40-hex SHA.
 */
export async function readBaseAgentsDocs(repoRoot: string, baseSha: string, gitDir?: string): Promise<AgentsDoc[]> {
  if (!/^[0-9a-f]{40}$/.test(baseSha)) throw new Error(`readBaseAgentsDocs: not a commit SHA: ${baseSha.slice(0, 80)}`);
  const dirArgs = gitDir ? [`--git-dir=${gitDir}`] : [];
  const opts = { cwd: repoRoot, ...(gitDir ? { safeDirectories: [gitDir, repoRoot] } : {}) };
  const { stdout } = await git([...dirArgs, 'ls-tree', '-r', '-z', '--full-tree', baseSha], opts);
  const entries: Array<{ path: string; blob: string }> = [];
  for (const record of stdout.toString('utf8').split('\0')) {
    // "<mode> <type> <sha>\t<path>"
    const m = /^(100644|100755) blob ([0-9a-f]{40,64})\t(.+)$/s.exec(record);
    if (!m) continue;
    const path = m[3]!;
    if (path === 'AGENTS.md' || path.endsWith('/AGENTS.md')) entries.push({ path, blob: m[2]! });
  }
  entries.sort((a, b) => a.path.split('/').length - b.path.split('/').length || a.path.localeCompare(b.path));
  const docs: AgentsDoc[] = [];
  let budget = AGENTS_MD_MAX_BYTES;
  for (const entry of entries.slice(0, MAX_FILES)) {
    if (budget <= 0) break;
    const { stdout: blob } = await git([...dirArgs, 'cat-file', 'blob', entry.blob], opts);
    let content = blob.toString('utf8');
    if (blob.length > budget) {
      content = `${blob.subarray(0, budget).toString('utf8').replace(/\uFFFD+$/, '')}\n[AGENTS.md truncated at ${AGENTS_MD_MAX_BYTES} bytes]`;
    }
    budget -= Math.min(blob.length, budget);
    docs.push({ path: entry.path, content });
  }
  return docs;
}
