/**
 * The thread an issue mention came from, as untrusted context for the model: the issue itself and
 * the comments before the request (without the app's own progress comments).
 * API: https://docs.github.com/en/rest/issues/comments#list-issue-comments
 */
import type { ContextItem } from '../contract.ts';
import type { Octokit } from './client.ts';

/** Most comments kept (the newest ones). */
export const MAX_CONTEXT_COMMENTS = 30;
/** Longest body kept per item, characters. */
export const MAX_CONTEXT_BODY = 12_000;

function clip(body: string): string {
  return body.length > MAX_CONTEXT_BODY ? `${body.slice(0, MAX_CONTEXT_BODY)}\n[… truncated]` : body;
}

/**
 * Builds the context of an issue thread: the issue (title and body), then the comments before
 * `beforeCommentId` (all comments when undefined), oldest first, at most {@link MAX_CONTEXT_COMMENTS}.
 */
export async function issueThreadContext(
  octokit: Octokit,
  issue: { owner: string; repo: string; number: number; title: string; body: string | null; author?: string; url?: string },
  opts: { botLogin?: string; beforeCommentId?: number },
): Promise<ContextItem[]> {
  const items: ContextItem[] = [
    { kind: 'issue', author: issue.author, title: issue.title, body: clip(issue.body ?? ''), url: issue.url },
  ];
  const comments = await octokit.paginate(octokit.rest.issues.listComments, {
    owner: issue.owner,
    repo: issue.repo,
    issue_number: issue.number,
    per_page: 100,
  });
  const earlier = comments.filter(
    (c) =>
      (opts.beforeCommentId === undefined || c.id < opts.beforeCommentId) &&
      c.user?.login !== opts.botLogin &&
      !(c.body ?? '').includes('<!-- codex-cloud:task='),
  );
  for (const c of earlier.slice(-MAX_CONTEXT_COMMENTS)) {
    items.push({ kind: 'comment', author: c.user?.login, body: clip(c.body ?? ''), url: c.html_url });
  }
  return items;
}
