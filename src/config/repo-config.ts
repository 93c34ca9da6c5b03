/**
 * Per-repository configuration: `.github/codex.yml` on the repository's default branch, read through
 * Probot's `context.config` (https://probot.github.io/docs/configuration/; it falls back to the
 * owner's `.github` repository and honours `_extends`) and validated with zod. Every key is optional;
 * unknown keys are errors so that typos surface instead of being silently ignored.
 *
 * ```yaml
 * setup: |                 # bash script run in the repository root, with network, before the agent
 *   npm ci
 * setup_timeout_minutes: 10  # 1..120, time limit of the setup phase (script or dependency install)
 * model: gpt-5.1-codex
 * reasoning_effort: high   # minimal | low | medium | high | xhigh
 * limits:
 *   max_turns: 100         # 1..500 model requests
 *   timeout_minutes: 45    # 1..360, wall clock of the whole task
 *   max_tokens: 2000000    # positive; input + output tokens
 * allow_workflow_changes: false  # may the agent change .github/workflows?
 * draft_pull_requests: false
 * auto_install: true       # without a setup script, detect the package manager and install
 * review:
 *   auto: false            # review pull requests when opened, reopened or marked ready
 *   on_push: false         # with auto: also review each push (the new commits only)
 *   drafts: false          # with auto: review draft pull requests too
 *   min_priority: P1       # post findings at or above this priority: P0 | P1 | P2 | P3
 *   paths_ignore: ["docs/**"]            # glob patterns of files reviews skip
 *   authors_ignore: ["dependabot[bot]"]  # authors whose pull requests are not auto-reviewed
 *   focus: security        # standing instructions for every review
 *   model: gpt-5.1-codex-mini            # model for reviews
 *   max_turns: 40          # 1..500
 *   timeout_minutes: 15    # 1..360
 * autofix:
 *   enabled: false         # fix failing checks of pull requests without being asked
 *   max_attempts: 2        # 1..10 automatic attempts per pull request and check name
 *   checks: [test, "lint*"] # check names or globs (`*`, `?`) to fix; default all
 * agent_network: off       # default: the agent's commands have no network; or an allowlist:
 * # agent_network:
 * #   allow: ["pypi.org", "*.pythonhosted.org"]   # exact hosts, or `*.` suffix wildcards
 * ```
 *
 * A key with an empty value (YAML `null`, e.g. `model:` with nothing after it) counts as not set.
 */
import { z } from 'zod';
import { ReasoningEffort } from '../contract.ts';
import { hostPatternProblem } from '../proxy/allowlist.ts';

/** Path of the file in the repository, for messages. */
export const REPO_CONFIG_PATH = '.github/codex.yml';

const int = (min: number, max?: number) => {
  let schema = z
    .number({ error: 'must be a whole number' })
    .int({ error: 'must be a whole number' })
    .min(min, { error: `must be at least ${min}` });
  if (max !== undefined) schema = schema.max(max, { error: `must be at most ${max}` });
  return schema;
};

/** Limits a repository may lower (the app caps them with its own limits). */
export const RepoLimits = z.strictObject({
  /** Model requests (turns) at most, 1..500. */
  max_turns: int(1, 500).optional(),
  /** Wall-clock budget of a task, minutes, 1..360. */
  timeout_minutes: int(1, 360).optional(),
  /** Tokens (input + output, as the Responses API counts them) per task, positive. */
  max_tokens: int(1).optional(),
});

/** A list of up to 200 non-empty strings. */
const stringList = () => z.array(z.string().trim().min(1, { error: 'entries must not be empty' })).max(200, { error: 'must have at most 200 entries' });

/**
 * Review settings (`review:`): automatic reviews of pull requests and how every review (asked or
 * automatic) is run and published. Priorities are `P0` (highest) … `P3`.
 */
export const RepoReview = z.strictObject({
  /** Review a pull request when it is opened, reopened or marked ready for review. Default false. */
  auto: z.boolean().default(false),
  /** With `auto`: also review each push to the pull request (only the commits since the last review). Default false. */
  on_push: z.boolean().default(false),
  /** With `auto`: review draft pull requests too. Default false. */
  drafts: z.boolean().default(false),
  /** Post findings at or above this priority (P0 highest); the others are only counted. Default `P1`. */
  min_priority: z.enum(['P0', 'P1', 'P2', 'P3']).default('P1'),
  /** Glob patterns (repository-relative paths) of files reviews skip, e.g. `docs/**`. Default none. */
  paths_ignore: stringList().default([]),
  /** Logins whose pull requests are not reviewed automatically, e.g. `dependabot[bot]`. Default none. */
  authors_ignore: stringList().default([]),
  /** Standing instructions for every review, e.g. `security and error handling`. */
  focus: z.string().trim().min(1, { error: 'must not be empty' }).max(4000, { error: 'must be at most 4000 characters' }).optional(),
  /** Model name for reviews (overrides `model` and `CODEX_MODEL` for reviews). */
  model: z.string().trim().min(1, { error: 'must not be empty' }).optional(),
  /** Model requests (turns) of a review at most, 1..500 (the app caps it with its review default). */
  max_turns: int(1, 500).optional(),
  /** Wall-clock budget of a review, minutes, 1..360. */
  timeout_minutes: int(1, 360).optional(),
});
/** Validated `review:` settings, defaults applied. */
export type RepoReview = z.infer<typeof RepoReview>;

/**
 * Automatic fixing of failing checks on pull requests (`autofix:`). When the key is absent,
 * {@link autofixSettings} gives {@link DEFAULT_AUTOFIX}.
 */
export const RepoAutofix = z.strictObject({
  /** Fix failing checks of pull requests from this repository without being asked. Default false. */
  enabled: z.boolean().default(false),
  /** Automatic attempts per pull request and check name, 1..10. Default 2. */
  max_attempts: int(1, 10).default(2),
  /**
   * Check names or globs to fix (`*` any characters, `?` one; case-insensitive; a plain name also
   * matches its matrix variants `name (…)`). Absent: every failing check.
   */
  checks: z
    .array(z.string().trim().min(1, { error: 'must not be empty' }).max(200, { error: 'must be at most 200 characters' }), {
      error: 'must be a list of check names or globs',
    })
    .min(1, { error: 'must list at least one check name or glob (leave the key out for all checks)' })
    .optional(),
});
/** Validated `autofix:` settings, defaults applied. */
export type RepoAutofix = z.infer<typeof RepoAutofix>;

/** `autofix:` when the file does not set it: disabled, 2 attempts, every check. */
export const DEFAULT_AUTOFIX: RepoAutofix = { enabled: false, max_attempts: 2 };

/** The repository's autofix settings: `autofix:` of the file with its defaults, or {@link DEFAULT_AUTOFIX}. */
export function autofixSettings(config: RepoConfig): RepoAutofix {
  return config.autofix ?? DEFAULT_AUTOFIX;
}

/**
 * Network of the agent's commands during the agent phase (`agent_network:`): `off` (the default;
 * YAML `false` means the same) or `{allow: [hosts]}`, reached through the app's agent proxy
 * (src/proxy/): exact host names (`pypi.org`) or `*.` suffix wildcards (`*.pythonhosted.org`:
 * its subdomains, not itself), HTTPS (CONNECT to port 443) and plain HTTP (port 80). The setup
 * phase is not affected (it has network). See {@link agentNetworkAllowlist}.
 */
export const RepoAgentNetwork = z.union(
  [
    z.literal(['off', false]).transform(() => 'off' as const),
    z.strictObject({
      allow: z
        .array(
          z.string({ error: 'must be a host name' }).trim().superRefine((host, ctx) => {
            const problem = hostPatternProblem(host);
            if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(host.slice(0, 80))} ${problem}` });
          }).transform((host) => host.toLowerCase().replace(/\.$/, '')),
          { error: 'must be a list of host names' },
        )
        .min(1, { error: 'must list at least one host (or write agent_network: off)' })
        .max(200, { error: 'must have at most 200 entries' }),
    }),
  ],
  { error: 'must be off or a mapping with allow: [host names]' },
);
/** Validated `agent_network:`: `off`, or the allowlist (lower-cased, trailing dots dropped). */
export type RepoAgentNetwork = z.infer<typeof RepoAgentNetwork>;

/** The hosts the agent's commands may reach, or undefined when `agent_network` is off (the default). */
export function agentNetworkAllowlist(config: RepoConfig): string[] | undefined {
  const network = config.agent_network;
  return network === undefined || network === 'off' ? undefined : [...new Set(network.allow)];
}

/** Schema of `.github/codex.yml` (YAML keys, snake_case). Defaults are applied by parsing. */
export const RepoConfig = z.strictObject({
  /** Bash script run in the repository root, with network, before the agent starts. */
  setup: z.string().optional(),
  /** Time limit of the setup phase, minutes, 1..120; the runner's default (10) when absent. */
  setup_timeout_minutes: int(1, 120).optional(),
  /** Model name for this repository's tasks (overrides `CODEX_MODEL`). */
  model: z.string().trim().min(1, { error: 'must not be empty' }).optional(),
  /** Reasoning effort (Responses API `reasoning.effort`). */
  reasoning_effort: ReasoningEffort.optional(),
  limits: RepoLimits.optional(),
  /** May the agent's changes touch `.github/workflows/`? Default false. */
  allow_workflow_changes: z.boolean().default(false),
  /** Open pull requests as drafts. Default false. */
  draft_pull_requests: z.boolean().default(false),
  /** Without a `setup` script, detect the package manager and install dependencies. Default true. */
  auto_install: z.boolean().default(true),
  review: RepoReview.default(() => RepoReview.parse({})),
  /** Automatic fixing of failing checks; see {@link autofixSettings} for the defaults when absent. */
  autofix: RepoAutofix.optional(),
  /** The agent phase's network: `off` (also when absent) or an allowlist; see {@link agentNetworkAllowlist}. */
  agent_network: RepoAgentNetwork.optional(),
});
/** A validated `.github/codex.yml`, defaults applied. */
export type RepoConfig = z.infer<typeof RepoConfig>;

/** One problem in the file: `key` is the dotted key path (`limits.max_turns`), or `(file)`/`(root)`. */
export type RepoConfigIssue = { key: string; message: string };

/**
 * The repository's `.github/codex.yml` is invalid. `issues` name each bad key; `message` is a markdown
 * list (one `` - `key`: message `` line per issue) fit for a reply in the thread.
 */
export class RepoConfigError extends Error {
  readonly issues: RepoConfigIssue[];

  constructor(issues: RepoConfigIssue[], options?: { cause?: unknown }) {
    super(issues.map((issue) => `- \`${issue.key}\`: ${issue.message}`).join('\n'), options);
    this.name = 'RepoConfigError';
    this.issues = issues;
  }
}

/** Text from the file, made safe for a markdown code span and short. */
function quoteKey(key: string): string {
  const clean = key.replace(/[`\r\n]/g, '').slice(0, 60);
  return clean === '' ? '(empty)' : clean;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'object':
      return 'a mapping';
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    default:
      return typeof value;
  }
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping of keys to values',
  array: 'a list',
};

/** Allowed keys of the object schema at `path`, for unknown-key messages. */
function allowedKeys(path: PropertyKey[]): string[] {
  let schema: z.ZodType = RepoConfig;
  for (const segment of path) {
    let inner: z.ZodType = schema;
    while (inner instanceof z.ZodOptional || inner instanceof z.ZodDefault) inner = inner.unwrap() as z.ZodType;
    if (!(inner instanceof z.ZodObject)) return [];
    schema = (inner.shape as Record<string, z.ZodType>)[String(segment)] ?? z.never();
  }
  while (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault) schema = schema.unwrap() as z.ZodType;
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function toIssues(error: z.ZodError): RepoConfigIssue[] {
  const issues: RepoConfigIssue[] = [];
  for (const issue of error.issues) {
    const at = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeys(issue.path);
      for (const key of issue.keys) {
        issues.push({
          key: [...at, quoteKey(key)].join('.'),
          message: `unknown key${allowed.length ? ` (allowed here: ${allowed.join(', ')})` : ''}`,
        });
      }
      continue;
    }
    const key = at.length ? at.join('.') : '(root)';
    if (issue.code === 'invalid_type') {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      issues.push({ key, message: `must be ${expected}, got ${describeType(issue.input)}` });
    } else if (issue.code === 'invalid_value') {
      issues.push({ key, message: `must be one of ${issue.values.map(String).join(', ')}` });
    } else {
      issues.push({ key, message: issue.message });
    }
  }
  return issues;
}

/** Drops keys whose value is null, at any depth of plain mappings (YAML `key:` with no value). */
function dropNulls(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, dropNulls(v)]),
  );
}

/**
 * Validates a parsed `.github/codex.yml` and applies defaults. `null`/`undefined` (no file, or an
 * empty one) give the defaults.
 * @param raw the parsed YAML document (any JSON-like value).
 * @returns the validated config.
 * @throws RepoConfigError naming every bad key, e.g. `limits.max_turns: must be at most 500`.
 */
export function parseRepoConfig(raw: unknown): RepoConfig {
  const result = RepoConfig.safeParse(dropNulls(raw ?? {}), { reportInput: true });
  if (!result.success) throw new RepoConfigError(toIssues(result.error), { cause: result.error });
  return result.data;
}

/** The part of Probot's `Context` that {@link loadRepoConfig} uses. */
export type RepoConfigSource = {
  /**
   * Probot's `context.config(fileName)`: reads `.github/<fileName>` from the repository's default
   * branch and parses it as YAML; resolves to `null` when there is no such file.
   */
  config: (file: string) => Promise<unknown>;
};

/** Prefix of the errors `@probot/octokit-plugin-config` throws about the file itself (not HTTP). */
const PLUGIN_ERROR = '[@probot/octokit-plugin-config]';

/**
 * Reads and validates the repository's `.github/codex.yml` through Probot's `context.config`.
 * A missing or empty file gives the defaults.
 * @throws RepoConfigError when the file is invalid: bad keys or values (named by key path), or a file
 *   that cannot be read as a YAML mapping (key `(file)`, e.g. a YAML syntax error with its line and
 *   column). Other errors (HTTP failures reaching GitHub) are rethrown unchanged.
 */
export async function loadRepoConfig(context: RepoConfigSource): Promise<RepoConfig> {
  let raw: unknown;
  try {
    raw = await context.config('codex.yml');
  } catch (error) {
    if (error instanceof Error && error.message.startsWith(PLUGIN_ERROR)) {
      throw new RepoConfigError([{ key: '(file)', message: describeFileError(error) }], { cause: error });
    }
    throw error;
  }
  return parseRepoConfig(raw);
}

/** A one-line description of why the plugin could not read the file. */
function describeFileError(error: Error): string {
  const cause = error.cause;
  if (cause instanceof Error && cause.name.startsWith('YAML')) {
    // yaml's YAMLParseError: "<what> at line L, column C:" followed by an excerpt of the document.
    const firstLine = cause.message.split('\n')[0]!.replace(/:$/, '');
    return `invalid YAML: ${firstLine}`;
  }
  if (error.message.includes('YAML is not an object')) return 'must be a YAML mapping of keys to values';
  if (error.message.includes('directory or a submodule')) return `${REPO_CONFIG_PATH} is a directory or a submodule`;
  return error.message.slice(PLUGIN_ERROR.length).trim();
}
