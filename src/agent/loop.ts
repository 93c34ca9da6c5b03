/**
 * The agent loop: stateless Responses API turns (the full history every time, `store: false`,
 * `prompt_cache_key` = task id) until the model answers without a tool call or a limit stops it.
 */
import type OpenAI from 'openai';
import { APIUserAbortError } from 'openai';
import type {
  ResponseFunctionToolCall,
  ResponseInputItem,
  ResponseOutputItem,
  ResponseOutputMessage,
} from 'openai/resources/responses/responses';
import type { ProgressEventInput, StopReason } from '../contract.ts';
import { addUsage, ModelError, runTurn, type RetryPolicy, type TokenUsage } from './model.ts';
import { AGENT_TOOLS } from './tools/definitions.ts';
import type { ToolRunner } from './tools/index.ts';

/** Inputs of {@link runAgentLoop}. */
export interface AgentLoopOptions {
  client: OpenAI;
  model: string;
  reasoningEffort?: 'minimal' | 'low' | 'medium' | 'high' | 'xhigh';
  /** Prompt cache key (the task id). */
  taskId: string;
  instructions: string;
  /** The first input items (task message). */
  input: ResponseInputItem[];
  tools: ToolRunner;
  limits: {
    maxTurns: number;
    /** Epoch ms after which the loop stops with `time_limit`. */
    deadline: number;
    /** Input + output tokens, summed over turns. */
    maxTokens: number;
  };
  retry: RetryPolicy;
  /** Aborting stops the loop with `cancelled`. */
  signal?: AbortSignal;
  emit: (event: ProgressEventInput) => void;
}

/** How the loop ended, with what it produced. Always returned, never thrown. */
export interface AgentLoopOutcome {
  stopReason: StopReason;
  /** Human-readable reason for a stop other than `completed`. */
  stopDetail?: string;
  /** The model's last message text (the final answer when completed). */
  finalMessage: string;
  turns: number;
  usage: TokenUsage;
  /** Time spent waiting for the model, ms. */
  modelMs: number;
  /** The whole conversation, for debugging and tests. */
  history: ResponseInputItem[];
}

function messageText(item: ResponseOutputMessage): string {
  return item.content
    .map((part) => (part.type === 'output_text' ? part.text : part.type === 'refusal' ? part.refusal : ''))
    .join('');
}

/** Converts output items to input items for the next turn (drops fields the API rejects as input). */
function toInput(item: ResponseOutputItem): ResponseInputItem {
  return item as ResponseInputItem;
}

/**
 * Runs the loop. Limits are checked before every turn and the deadline also interrupts a turn or a
 * command in progress. Model failures after retries end the loop with `model_error`.
 */
export async function runAgentLoop(opts: AgentLoopOptions): Promise<AgentLoopOutcome> {
  const history: ResponseInputItem[] = [...opts.input];
  const usage: TokenUsage = { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, reasoningTokens: 0 };
  let turns = 0;
  let modelMs = 0;
  let finalMessage = '';
  const deadlineSignal = AbortSignal.timeout(Math.max(1, opts.limits.deadline - Date.now()));
  const signal = opts.signal ? AbortSignal.any([opts.signal, deadlineSignal]) : deadlineSignal;
  const outcome = (stopReason: StopReason, stopDetail?: string): AgentLoopOutcome => ({
    stopReason,
    stopDetail,
    finalMessage,
    turns,
    usage,
    modelMs,
    history,
  });
  const interrupted = (): AgentLoopOutcome | undefined => {
    if (opts.signal?.aborted) return outcome('cancelled', 'the task was cancelled');
    if (deadlineSignal.aborted || Date.now() >= opts.limits.deadline)
      return outcome('time_limit', 'the wall-clock limit of the task was reached');
    return undefined;
  };

  for (;;) {
    const stop = interrupted();
    if (stop) return stop;
    if (turns >= opts.limits.maxTurns) return outcome('turn_limit', `the turn limit (${opts.limits.maxTurns}) was reached`);
    const spent = usage.inputTokens + usage.outputTokens;
    if (spent >= opts.limits.maxTokens)
      return outcome('token_limit', `the token budget (${opts.limits.maxTokens} tokens) was used up (${spent})`);

    const turn = turns + 1;
    opts.emit({ type: 'model_request', turn, status: 'started' });
    const started = performance.now();
    let result;
    try {
      result = await runTurn(
        opts.client,
        {
          model: opts.model,
          instructions: opts.instructions,
          input: history,
          tools: AGENT_TOOLS,
          promptCacheKey: opts.taskId,
          reasoningEffort: opts.reasoningEffort,
        },
        {
          retry: opts.retry,
          signal,
          onRetry: (attempt, reason) =>
            opts.emit({ type: 'model_request', turn, status: 'retrying', reason: `attempt ${attempt} failed: ${reason}` }),
        },
      );
    } catch (error) {
      modelMs += performance.now() - started;
      const stopped = interrupted();
      if (stopped) return stopped;
      if (error instanceof ModelError) return outcome('model_error', error.message);
      if (error instanceof APIUserAbortError) return outcome('cancelled', 'the task was cancelled');
      throw error;
    }
    modelMs += performance.now() - started;
    turns = turn;
    addUsage(usage, result.usage);
    opts.emit({
      type: 'model_request',
      turn,
      status: 'completed',
      usage: {
        inputTokens: result.usage.inputTokens,
        cachedInputTokens: result.usage.cachedInputTokens,
        outputTokens: result.usage.outputTokens,
      },
    });

    const calls: ResponseFunctionToolCall[] = [];
    for (const item of result.output) {
      history.push(toInput(item));
      if (item.type === 'message') {
        const text = messageText(item);
        if (text.trim()) {
          finalMessage = text;
          opts.emit({ type: 'message', text });
        }
      } else if (item.type === 'function_call') {
        calls.push(item);
      }
    }
    if (calls.length === 0) return outcome('completed');

    for (const call of calls) {
      const stopNow = interrupted();
      const output = stopNow
        ? 'error: the task stopped before this call ran.'
        : await opts.tools.execute({ name: call.name, arguments: call.arguments, call_id: call.call_id });
      history.push({ type: 'function_call_output', call_id: call.call_id, output });
    }
  }
}
