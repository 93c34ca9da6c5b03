/**
 * Review fixtures for the end-to-end tests (test/reviews/): the review JSON the scripted model ends
 * with (Codex's review output shape), `pull_request` deliveries for any action, and the app's reviews
 * and their comments read back from the stand-in.
 */
import type { AppHarness } from './app-harness.ts';
import { firstPrompt } from './pull-requests.ts';
import type { Json } from './github-stand-in.ts';
import type { RecordedRequest, ScriptedTurn } from './scripted-model.ts';
import { createDelivery, pullRequestOpened, type Delivery } from './webhooks.ts';

/** One finding as the model writes it. */
export interface ModelFinding {
  title: string;
  body?: string;
  priority: 0 | 1 | 2 | 3;
  path: string;
  start: number;
  end?: number;
  confidence?: number;
}

/** The review JSON object (a string) with `findings` and the optional `resolved_findings`. */
export function reviewJson(findings: ModelFinding[], opts: { resolved?: string[]; correct?: boolean } = {}): string {
  return JSON.stringify({
    findings: findings.map((f) => ({
      title: f.title,
      body: f.body ?? `${f.title}: explained.`,
      confidence_score: f.confidence ?? 0.8,
      priority: f.priority,
      code_location: { absolute_file_path: f.path, line_range: { start: f.start, end: f.end ?? f.start } },
    })),
    overall_correctness: (opts.correct ?? findings.length === 0) ? 'patch is correct' : 'patch is incorrect',
    overall_explanation: findings.length ? 'The change has a problem.' : 'The change looks right.',
    overall_confidence_score: 0.8,
    ...(opts.resolved ? { resolved_findings: opts.resolved } : {}),
  });
}

/** The checkout's absolute path as the review request states it (`cwd: …`). */
export function reviewCwd(req: RecordedRequest): string {
  return /^cwd: (.+)$/m.exec(firstPrompt(req))?.[1] ?? '';
}

/**
 * One scripted turn that ends the review with a final message: `text`, or what `text(req)` makes of
 * the request (after `check(req)`, e.g. expectations on the prompt).
 */
export function finalTurn(text: string | ((req: RecordedRequest) => string), check?: (req: RecordedRequest) => void): ScriptedTurn {
  return (req) => {
    check?.(req);
    return [{ type: 'message', text: typeof text === 'string' ? text : text(req) }];
  };
}

/**
 * A `pull_request` delivery with `action` for the stand-in's pull request `pull` (laid over GitHub's
 * example payload, like `pullRequestOpened`), with `overrides` merged into `pull_request`.
 */
export function pullRequestEvent(h: AppHarness, fullName: string, action: string, pull: Json, overrides: Json = {}, extra: Json = {}): Delivery {
  const opened = pullRequestOpened({ repo: h.github.repository(fullName), pull, installationId: 1 });
  const payload = { ...structuredClone(opened.payload), ...extra, action } as Json;
  payload.pull_request = { ...(payload.pull_request as Json), ...overrides };
  return createDelivery('pull_request', payload);
}

/** The app's reviews of a pull request. */
export function botReviews(h: AppHarness, fullName: string, number: number): Json[] {
  return h.github.reviews(fullName, number).filter((r) => (r.user as { login: string }).login === h.github.botLogin);
}

/** The stand-in's pull request `number` (REST object). */
export async function pullOf(h: AppHarness, fullName: string, number: number): Promise<Json> {
  return (await h.github.pulls(fullName)).find((p) => p.number === number)!;
}
