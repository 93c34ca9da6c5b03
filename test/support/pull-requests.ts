/**
 * Pull request fixtures for the end-to-end tests: a repository with a file whose line 12 holds a
 * magic number, same-repository pull requests on it, and scripted agent runs that patch one file.
 */
import type { RepoFile } from './git-http.ts';
import type { GitHubStandIn, Json } from './github-stand-in.ts';
import { buggyNodeRepo } from './fixtures.ts';
import { toolOutputs, type RecordedRequest, type ScriptedTurn } from './scripted-model.ts';

/** `src/x.ts` on the default branch: 20 lines. */
export const X_TS_BASE = Array.from({ length: 20 }, (_, i) => `// line ${i + 1}`).join('\n') + '\n';

/** `src/x.ts` on the pull request branch: line 12 computes a price with a magic number. */
export const X_TS_PR = X_TS_BASE.replace('// line 11\n// line 12\n', 'export function gross(price: number): number {\n  return price * 1.0825;\n').replace('// line 13\n', '}\n');

/** The agent's change to {@link X_TS_PR}: the rate becomes a constant. */
export const X_TS_PATCH = `*** Begin Patch
*** Update File: src/x.ts
@@ export function gross(price: number): number {
-  return price * 1.0825;
+  return price * TAX_RATE;
 }
*** End Patch`;

/** {@link buggyNodeRepo} plus `src/x.ts`. */
export function pullRequestRepo(): Record<string, RepoFile> {
  return { ...buggyNodeRepo(), 'src/x.ts': X_TS_BASE };
}

let branches = 0;

/**
 * Opens a same-repository pull request by `maintainer` from a new branch with one commit of `files`
 * on top of the default branch.
 * @returns the REST pull request object, its number, branch and head SHA.
 */
export async function openPullRequest(
  gh: GitHubStandIn,
  fullName: string,
  files: Record<string, RepoFile | null>,
  opts: { title?: string; body?: string; user?: string } = {},
): Promise<{ pull: Json; number: number; branch: string; headSha: string }> {
  const branch = `feature-${++branches}`;
  const headSha = await gh.commitFiles(fullName, branch, files, { message: 'Work in progress' });
  const pull = await gh.addPull(fullName, { head: branch, title: opts.title ?? 'Work in progress', body: opts.body ?? 'Some work.', user: opts.user ?? 'maintainer' });
  return { pull, number: pull.number as number, branch, headSha };
}

/** The text of the first user message of a model request (environment, guidance, context, request), as the model reads it. */
export function firstPrompt(req: RecordedRequest): string {
  const first = (req.body?.input as Array<{ content?: Array<{ text?: string }> }> | undefined)?.[0];
  return first?.content?.map((c) => c.text ?? '').join('\n') ?? '';
}

/**
 * Scripted turns that apply `patch` (after `before`, e.g. a push to the branch meanwhile), check that
 * it applied, and finish with a summary.
 */
export function patchTurns(patch: string, opts: { before?: (req: RecordedRequest) => void | Promise<void>; title?: string } = {}): ScriptedTurn[] {
  return [
    async (req) => {
      await opts.before?.(req);
      return [{ type: 'function_call', name: 'apply_patch', arguments: { input: patch } }];
    },
    (req) => {
      const out = toolOutputs(req).at(-1)?.output ?? '';
      if (!out.includes('Success. Updated the following files')) throw new Error(`expected the patch to apply, got: ${out.slice(0, 500)}`);
      return [{ type: 'message', text: `# ${opts.title ?? 'Apply the requested change'}\n\n## Summary\n- Done as asked.\n\n## Testing\n- none` }];
    },
  ];
}
