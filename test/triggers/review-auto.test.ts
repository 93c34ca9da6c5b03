/** Which `pull_request` events start an automatic review, and the review settings from `review:`. */
import { describe, expect, test } from '@jest/globals';
import { RepoConfig } from '../../src/config/repo-config.ts';
import { autoReviewSkip, AutoReviewPayload } from '../../src/triggers/review-auto.ts';
import { resolveReviewSettings, reviewRequest, REVIEW_DEFAULT_MAX_TURNS } from '../../src/triggers/review-request.ts';

const SHA = 'a'.repeat(40);
function payload(pull: Record<string, unknown> = {}) {
  return AutoReviewPayload.parse({
    action: 'opened',
    pull_request: { id: 1, number: 2, title: 't', state: 'open', user: { login: 'alice' }, base: { ref: 'main', sha: SHA }, head: { ref: 'f', sha: SHA, repo: { full_name: 'o/r' } }, ...pull },
    repository: { name: 'r', owner: { login: 'o' } },
    installation: { id: 1 },
    sender: { login: 'alice', id: 3 },
  });
}
const config = (review: Record<string, unknown>) => RepoConfig.parse({ review });

describe('autoReviewSkip', () => {
  test('review.auto off (the default): no review, whatever the event', () => {
    expect(autoReviewSkip('pull_request.opened', payload(), RepoConfig.parse({}))).toBe('review.auto is off');
  });
  test('auto: opened, reopened and ready_for_review review; synchronize only with on_push', () => {
    for (const event of ['pull_request.opened', 'pull_request.reopened', 'pull_request.ready_for_review'] as const) {
      expect(autoReviewSkip(event, payload(), config({ auto: true }))).toBeUndefined();
    }
    expect(autoReviewSkip('pull_request.synchronize', payload(), config({ auto: true }))).toBe('review.on_push is off');
    expect(autoReviewSkip('pull_request.synchronize', payload(), config({ auto: true, on_push: true }))).toBeUndefined();
  });
  test('drafts skipped unless review.drafts; closed pull requests skipped; authors_ignore case-insensitive', () => {
    expect(autoReviewSkip('pull_request.opened', payload({ draft: true }), config({ auto: true }))).toMatch(/draft/);
    expect(autoReviewSkip('pull_request.opened', payload({ draft: true }), config({ auto: true, drafts: true }))).toBeUndefined();
    expect(autoReviewSkip('pull_request.reopened', payload({ state: 'closed' }), config({ auto: true }))).toMatch(/not open/);
    expect(autoReviewSkip('pull_request.opened', payload({ user: { login: 'Dependabot[bot]' } }), config({ auto: true, authors_ignore: ['dependabot[bot]'] }))).toMatch(/authors_ignore/);
  });
});

describe('review settings', () => {
  const app = { mention: '@codex', allowedBots: [], model: 'gpt-app', timeoutMs: 30 * 60_000, maxTokens: 1_000_000 };
  test('review.model, max_turns and timeout_minutes over the defaults; the timeout capped by the app', () => {
    expect(resolveReviewSettings(app, RepoConfig.parse({ model: 'gpt-repo' }))).toMatchObject({ model: 'gpt-repo', maxTurns: REVIEW_DEFAULT_MAX_TURNS, timeoutMs: 20 * 60_000 });
    expect(resolveReviewSettings(app, config({ model: 'gpt-mini', max_turns: 7, timeout_minutes: 90 }))).toMatchObject({ model: 'gpt-mini', maxTurns: 7, timeoutMs: 30 * 60_000 });
  });
  test('min_priority as a number, paths_ignore, focus; an empty request focus is dropped', () => {
    const r = reviewRequest(config({ min_priority: 'P2', paths_ignore: ['docs/**'], focus: 'security' }), { botLogin: 'b[bot]', automatic: false, focus: { text: ' ', requester: 'alice', trust: 'instruction' } });
    expect(r).toEqual({ minPriority: 2, pathsIgnore: ['docs/**'], standingFocus: 'security', automatic: false, botLogin: 'b[bot]' });
  });
});
