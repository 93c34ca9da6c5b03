/**
 * Function tool definitions sent to the Responses API (`tools`), mirroring the Codex CLI's tools
 * (`shell`, `apply_patch`, `update_plan`) since OpenAI's codex models are trained on them.
 * Format: https://platform.openai.com/docs/guides/function-calling
 */
import type { FunctionTool } from 'openai/resources/responses/responses';

/** `shell {command: string[], workdir?: string, timeout_ms?: number}`. */
export const SHELL_TOOL: FunctionTool = {
  type: 'function',
  name: 'shell',
  description:
    'Runs a command in the sandbox and returns its combined stdout and stderr, exit code and duration. ' +
    'Pass argv, e.g. ["bash", "-lc", "npm test"]. The sandbox has no network.',
  strict: false,
  parameters: {
    type: 'object',
    properties: {
      command: { type: 'array', items: { type: 'string' }, description: 'The command to execute, as argv.' },
      workdir: { type: 'string', description: 'Working directory, relative to the repository root (default: the root).' },
      timeout_ms: { type: 'number', description: 'Timeout of the command in milliseconds (default: several minutes).' },
    },
    required: ['command'],
    additionalProperties: false,
  },
};

/** `apply_patch {input: string}` in the `*** Begin Patch` format. */
export const APPLY_PATCH_TOOL: FunctionTool = {
  type: 'function',
  name: 'apply_patch',
  description: [
    'Edits files with a patch. The input is a whole patch in this format:',
    '*** Begin Patch',
    '*** Add File: <path>        (then every line prefixed with +)',
    '*** Delete File: <path>',
    '*** Update File: <path>',
    '*** Move to: <new path>     (optional, right after Update File)',
    '@@ <optional line to locate the hunk, e.g. a function signature>',
    ' <context line>',
    '-<removed line>',
    '+<added line>',
    '*** End of File             (optional: the hunk ends at the end of the file)',
    '*** End Patch',
    'Paths are relative to the repository root. Give about 3 lines of context above and below each change.',
  ].join('\n'),
  strict: false,
  parameters: {
    type: 'object',
    properties: { input: { type: 'string', description: 'The entire patch.' } },
    required: ['input'],
    additionalProperties: false,
  },
};

/** `update_plan {explanation?: string, plan: [{step, status}]}`. */
export const UPDATE_PLAN_TOOL: FunctionTool = {
  type: 'function',
  name: 'update_plan',
  description:
    'Updates the task plan shown to the people following the task. At most one step is in_progress at a time.',
  strict: false,
  parameters: {
    type: 'object',
    properties: {
      explanation: { type: 'string' },
      plan: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            step: { type: 'string' },
            status: { type: 'string', enum: ['pending', 'in_progress', 'completed'] },
          },
          required: ['step', 'status'],
          additionalProperties: false,
        },
      },
    },
    required: ['plan'],
    additionalProperties: false,
  },
};

/** The tools of a coding task, in a stable order (part of the cached prompt prefix). */
export const AGENT_TOOLS: FunctionTool[] = [SHELL_TOOL, APPLY_PATCH_TOOL, UPDATE_PLAN_TOOL];
