/**
 * The agent phase of a `review` task (DESIGN.md, "Review"), as the runner runs it: the review
 * guidelines from the BASE commit's AGENTS.md files (read from the runner's private git directory,
 * never from the untrusted head's working tree), the review request built from the spec
 * (`reviewPromptFromSpec`), then the review agent (`runReviewAgent`: the loop, the JSON final message,
 * one restate request). The agent has the same sandboxed tools as any task (no network); it is told
 * to change nothing, and the runner discards whatever it wrote anyway.
 */
import type { ProgressEventInput, TaskSpec } from '../contract.ts';
import { readBaseAgentsDocs } from './base-agents-docs.ts';
import type { AgentLoopOutcome } from './loop.ts';
import { createModelClient } from './model.ts';
import { reviewPromptFromSpec } from './prompts/review.ts';
import { runReviewAgent } from './review-agent.ts';
import type { ParsedReview } from './review-output.ts';
import type { Sandbox } from './sandbox.ts';
import { ToolRunner } from './tools/index.ts';

/** Inputs of {@link runReviewPhase}. */
export interface ReviewPhaseOptions {
  /** A `review` spec (kind `review`, a `review` block and `repository.headSha`). */
  spec: TaskSpec;
  /** The checkout (the agent's working directory). */
  root: string;
  /** The runner's private git directory of the checkout (holds the base commit's objects). */
  privateGitDir: string;
  /** The agent's sandbox (no network). */
  sandbox: Sandbox;
  /** Epoch ms by which the task must end. */
  deadline: number;
  emit: (event: ProgressEventInput) => void;
  signal?: AbortSignal | undefined;
}

/** How the review phase ended. */
export interface ReviewPhaseOutcome {
  /** The agent loop's outcome (both loops combined after a restate request). */
  loop: AgentLoopOutcome;
  /** The tools the agent used (their command records and plan). */
  tools: ToolRunner;
  /** The review, when the loop completed with a valid final message. */
  parsed?: ParsedReview;
  /** Why the completed loop gave no review (the parser's reason after the restate request). */
  invalidOutput?: string;
}

/**
 * Runs the review agent for `spec`.
 * @throws GitError when the base commit's AGENTS.md files cannot be read; Error when the spec is not
 *   a review of a pull request head.
 */
export async function runReviewPhase(opts: ReviewPhaseOptions): Promise<ReviewPhaseOutcome> {
  const { spec, root, deadline, emit } = opts;
  const baseDocs = await readBaseAgentsDocs(root, spec.repository.baseSha, opts.privateGitDir);
  const prompt = reviewPromptFromSpec(spec, root, baseDocs);
  const client = createModelClient({ baseUrl: spec.model.baseUrl, apiKey: spec.model.apiKey });
  const timeout = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
  const tools = new ToolRunner({
    sandbox: opts.sandbox,
    root,
    commandTimeoutMs: spec.limits.commandTimeoutMs,
    deadline,
    signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
    emit,
  });
  const outcome = await runReviewAgent({
    client,
    model: spec.model.name,
    reasoningEffort: spec.model.reasoningEffort,
    taskId: spec.id,
    prompt,
    workspaceRoot: root,
    tools,
    limits: { maxTurns: spec.limits.maxTurns, deadline, maxTokens: spec.limits.maxTokens },
    retry: { retries: spec.model.maxRetries, baseMs: spec.model.retryBaseMs },
    ...(opts.signal ? { signal: opts.signal } : {}),
    emit,
  });
  return {
    loop: outcome.loop,
    tools,
    ...(outcome.review ? { parsed: outcome.review } : {}),
    ...(outcome.invalidOutput !== undefined ? { invalidOutput: outcome.invalidOutput } : {}),
  };
}
