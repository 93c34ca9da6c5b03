/**
 * The agent phase of a `review` task: the model loop with the review rubric and the review request,
 * then the final message read as the review JSON object; when it is not valid, ONE follow-up turn asks
 * the model to restate it (the conversation so far is kept, so nothing is reviewed twice), and if the
 * answer is still not valid the review fails with the parser's reason.
 */
import type { ResponseInputItem } from 'openai/resources/responses/responses';
import { runAgentLoop, type AgentLoopOptions, type AgentLoopOutcome } from './loop.ts';
import { addUsage } from './model.ts';
import { REVIEW_INSTRUCTIONS } from './prompts/review.ts';
import { ReviewOutputError, parseReviewOutput, restateReviewPrompt, type ParsedReview } from './review-output.ts';

/** Turns the restate request may take (one answer; a second in case the model calls a tool first). */
const RESTATE_MAX_TURNS = 2;

/** Inputs of {@link runReviewAgent}: the loop's options without instructions and input, plus the review request. */
export interface ReviewAgentOptions extends Omit<AgentLoopOptions, 'instructions' | 'input'> {
  /** The review request text (`buildReviewPrompt` / `reviewPromptFromSpec`). */
  prompt: string;
  /** Absolute path of the checkout, stripped from the findings' paths. */
  workspaceRoot: string;
}

/** How the review agent ended. */
export interface ReviewAgentOutcome {
  /** The loop's outcome; after a restate request, the two loops combined (turns, usage and time summed). */
  loop: AgentLoopOutcome;
  /** The parsed review, when the loop completed and its final message (or the restated one) was valid. */
  review?: ParsedReview;
  /** Why there is no review although the loop completed: the final message was not valid, also after the restate request. */
  invalidOutput?: string;
  /** True when the restate request was sent. */
  restated: boolean;
}

function userMessage(text: string): ResponseInputItem {
  return { type: 'message', role: 'user', content: [{ type: 'input_text', text }] };
}

/**
 * Runs the review. Never throws for a bad answer: a loop that stops early (limits, cancel, model
 * error) is returned as is, without a review; a completed loop gives a `review` or `invalidOutput`.
 */
export async function runReviewAgent(opts: ReviewAgentOptions): Promise<ReviewAgentOutcome> {
  const { prompt, workspaceRoot, ...loopOpts } = opts;
  const first = await runAgentLoop({ ...loopOpts, instructions: REVIEW_INSTRUCTIONS, input: [userMessage(prompt)] });
  if (first.stopReason !== 'completed') return { loop: first, restated: false };
  let error: ReviewOutputError;
  try {
    return { loop: first, review: parseReviewOutput(first.finalMessage, { workspaceRoot }), restated: false };
  } catch (e) {
    if (!(e instanceof ReviewOutputError)) throw e;
    error = e;
  }
  opts.emit({ type: 'log', level: 'warn', message: `the review's final message was not valid (${error.reason}); asking the model to restate it` });
  const spentTokens = first.usage.inputTokens + first.usage.outputTokens;
  const second = await runAgentLoop({
    ...loopOpts,
    instructions: REVIEW_INSTRUCTIONS,
    input: [...first.history, userMessage(restateReviewPrompt(error))],
    limits: {
      ...loopOpts.limits,
      maxTurns: Math.max(0, Math.min(RESTATE_MAX_TURNS, loopOpts.limits.maxTurns - first.turns)),
      maxTokens: Math.max(0, loopOpts.limits.maxTokens - spentTokens),
    },
  });
  const loop: AgentLoopOutcome = {
    ...second,
    finalMessage: second.finalMessage || first.finalMessage,
    turns: first.turns + second.turns,
    usage: addUsage({ ...first.usage }, second.usage),
    modelMs: first.modelMs + second.modelMs,
  };
  if (second.stopReason !== 'completed') {
    // Running out of the restate request's own small budget is an invalid answer, not a stopped task;
    // a cancel, the wall clock or a model failure stay what they are.
    const ownBudget = second.stopReason === 'turn_limit' || second.stopReason === 'token_limit';
    const invalidOutput = `${error.reason} (and the restate request ended early: ${second.stopDetail ?? second.stopReason})`;
    return { loop: ownBudget ? { ...loop, stopReason: 'completed', stopDetail: undefined } : loop, invalidOutput, restated: true };
  }
  try {
    return { loop, review: parseReviewOutput(second.finalMessage, { workspaceRoot }), restated: true };
  } catch (e) {
    if (!(e instanceof ReviewOutputError)) throw e;
    return { loop, invalidOutput: e.reason, restated: true };
  }
}
