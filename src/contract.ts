/**
 * The runner contract: what the control plane (the GitHub App) hands to a runner (TaskSpec), what the
 * runner reports while it works (ProgressEvent) and what it returns (TaskResult). Both sides validate
 * with these zod schemas; see DESIGN.md, "Runner contract".
 */
import { z } from 'zod';

/** Version of the contract; bumped on any incompatible change. */
export const CONTRACT_VERSION = 1;

const gitSha = z.string().regex(/^[0-9a-f]{40}$/, 'must be a 40-character hex git SHA');

/** Phases of a task, in order. `result` is the collection of changes after the agent stops. */
export const Phase = z.enum(['checkout', 'setup', 'agent', 'result']);
/** One of `checkout`, `setup`, `agent`, `result`. */
export type Phase = z.infer<typeof Phase>;

/** Reasoning effort passed to the Responses API (`reasoning.effort`). */
export const ReasoningEffort = z.enum(['minimal', 'low', 'medium', 'high', 'xhigh']);

/** A piece of thread context (issue body, comment, review thread, CI log): untrusted data for the model. */
export const ContextItem = z.object({
  /** What the text is, e.g. `issue`, `comment`, `pull_request`, `review_comment`, `check_log`. */
  kind: z.string().min(1),
  /** GitHub login of the author, if any. */
  author: z.string().optional(),
  title: z.string().optional(),
  body: z.string(),
  url: z.string().optional(),
  /**
   * How the agent may use the text: `instruction` when the author has write access to the repository
   * (a maintainer's request may be followed), `data` for everyone else (never followed). Absent: data.
   */
  trust: z.enum(['instruction', 'data']).optional(),
});
export type ContextItem = z.infer<typeof ContextItem>;

/** Limits of one task. Times in ms; tokens counted as the Responses API reports them. */
export const Limits = z.object({
  /** Model requests (turns) at most. */
  maxTurns: z.number().int().positive().default(60),
  /** Wall-clock budget for the whole task (all phases), ms. */
  wallTimeMs: z.number().int().positive().default(30 * 60_000),
  /** Total tokens (input + output) the agent may use across turns. */
  maxTokens: z.number().int().positive().default(4_000_000),
  /** Default timeout of one command the model runs, ms (the model may ask for another, capped at 4×). */
  commandTimeoutMs: z.number().int().positive().default(10 * 60_000),
  /** Timeout of the setup phase, ms (`setup_timeout_minutes` in `.github/codex.yml`; default 10 minutes). */
  setupTimeoutMs: z.number().int().positive().default(10 * 60_000),
  /** Processes and threads one sandboxed command may have at once (RLIMIT_NPROC); the runner's default when absent (1024). */
  maxProcesses: z.number().int().positive().optional(),
  /** Size of a sandboxed command's private /tmp, bytes; the runner's default when absent (1 GiB). */
  tmpBytes: z.number().int().min(4096).optional(),
  /** Disk the checkout and the sandbox home may use together, bytes; the runner's default when absent (10 GiB). */
  diskBytes: z.number().int().min(4096).optional(),
});
export type Limits = z.infer<typeof Limits>;

/** An earlier finding of the app on a pull request, given to a re-review (see {@link ReviewSpec}). */
export const EarlierFinding = z.object({
  /** The id in its comment's hidden marker; what `resolved_findings` lists. */
  id: z.string().min(1).max(64),
  /** Plain-text title (model text from an earlier review: data). */
  title: z.string(),
  /** Repository-relative path. */
  path: z.string(),
  /** Last line, 1-based. */
  line: z.number().int().positive(),
  /** First line of a multi-line finding. */
  startLine: z.number().int().positive().optional(),
});
export type EarlierFinding = z.infer<typeof EarlierFinding>;

/**
 * What a `review` task needs beyond the repository (TaskSpec `review`): the diff is
 * `repository.baseSha...repository.headSha` (the merge base), or `sinceSha..headSha` for an
 * incremental review after a push.
 */
export const ReviewSpec = z.object({
  pullNumber: z.number().int().positive(),
  /** Head of the last review, for an incremental review of the commits pushed since. */
  sinceSha: gitSha.optional(),
  /** The text after `@codex review`, its author, and whether that author may instruct (write access). */
  focus: z.object({ text: z.string(), requester: z.string(), trust: z.enum(['instruction', 'data']) }).optional(),
  /** `review.focus` from the repository's config (maintainers' standing instructions). */
  standingFocus: z.string().optional(),
  /** `review.paths_ignore` glob patterns. */
  pathsIgnore: z.array(z.string()).default([]),
  /** The app's open findings from earlier reviews of this pull request. */
  earlierFindings: z.array(EarlierFinding).default([]),
});
export type ReviewSpec = z.infer<typeof ReviewSpec>;

/**
 * Where an environment archive travels (see {@link EnvironmentSpec}): a local file path readable
 * (restore) or writable (save) by the runner (local backend), or a presigned S3 URL (ECS backend:
 * GET for restore, PUT for save, https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html).
 */
export const EnvironmentLocation = z.union([
  z.object({ path: z.string().min(1).refine((p) => p.startsWith('/'), 'must be an absolute path') }),
  z.object({ url: z.string().url() }),
]);
export type EnvironmentLocation = z.infer<typeof EnvironmentLocation>;

/**
 * The cached environment of a task (DESIGN.md, "Environments"): what the setup phase produced (the
 * checkout's git-ignored dependency directories and the sandbox home's caches) as one compressed tar
 * archive. The app computes `key` (see `environmentKey` in src/agent/environment/key.ts) from the
 * same inputs the runner re-checks after checkout; the backend fills `restore` (a fresh archive for
 * the key exists) and `save` (where the runner writes the archive after running setup).
 */
export const EnvironmentSpec = z.object({
  /** Cache key: 64 hex characters (sha256). */
  key: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 hex characters'),
  /** Repository id (GitHub's numeric id, as a string), an input of the key. */
  repositoryId: z.string().min(1),
  /** Cache namespace inside the repository (e.g. `default`, `pull/12` for a fork), an input of the key. */
  scope: z.string().max(200).default('default'),
  /** Rebuild: run setup even when `restore` is given (`@codex retry --fresh`). */
  fresh: z.boolean().default(false),
  /**
   * What to restore instead of running setup, and when it was saved (ISO-8601): the archive
   * (`path` or `url`), or (local backend) `unpacked`, a directory inside the runner's work directory
   * holding `repo/` and `home/` that the backend already extracted from the archive, with the same
   * entry checks, ahead of the task; the runner only moves its entries into place.
   */
  restore: z
    .object({
      from: z.union([
        EnvironmentLocation,
        z.object({ unpacked: z.string().min(1).refine((p) => p.startsWith('/'), 'must be an absolute path') }),
      ]),
      savedAt: z.string(),
    })
    .optional(),
  /** Where to save the archive after setup ran. */
  save: EnvironmentLocation.optional(),
  /** Largest archive (compressed), bytes; a larger one is not saved. */
  maxBytes: z.number().int().positive(),
});
export type EnvironmentSpec = z.infer<typeof EnvironmentSpec>;

/**
 * TaskSpec: everything a runner needs for one task. Secrets in it (the clone token, the model token)
 * are short-lived and scoped: a read-only installation token for one repository and a task token for
 * the model gateway.
 */
export const TaskSpec = z.object({
  version: z.literal(CONTRACT_VERSION).default(CONTRACT_VERSION),
  /** Task id, also the prompt cache key. */
  id: z.string().min(1).max(128),
  kind: z.enum(['task', 'review', 'fix']),
  repository: z.object({
    /** HTTP(S) clone URL, without credentials. */
    cloneUrl: z.string().url(),
    /** `owner/name`. */
    fullName: z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'must be owner/name'),
    /** Token for HTTP basic auth as `x-access-token` (GitHub installation token, contents: read). */
    token: z.string().optional(),
    /** Branch the work starts from (default branch, or the pull request's head ref for fixes). */
    baseRef: z.string().min(1),
    /** Commit the work starts from; changes are reported against it. */
    baseSha: gitSha,
    /** For pull request work: the head ref changes would be pushed to. */
    headRef: z.string().optional(),
    /**
     * For pull request work: the head commit the work starts from. When set, the runner checks it out
     * (on a local branch named `headRef`) with enough history for `git diff <baseSha>...HEAD` and
     * `git log <baseSha>..HEAD`, and reports changes against it; `baseRef`/`baseSha` are then the pull
     * request's base branch and its commit.
     */
    headSha: gitSha.optional(),
    /**
     * For pull request work: the ref of THIS repository that holds `headSha`, fetched when the server
     * refuses a fetch by SHA: `refs/pull/<n>/head` for a pull request from a fork, otherwise (default)
     * `refs/heads/<headRef>`.
     */
    fetchRef: z
      .string()
      .regex(/^refs\/(?:pull\/\d+\/head|heads\/[^\s:~^?*[\\\]]+)$/, 'must be refs/pull/<n>/head or refs/heads/<branch>')
      .optional(),
    /** For pull request work: the pull request's number of commits (GitHub's `commits`), to size the fetch depth. */
    prCommits: z.number().int().positive().optional(),
  }),
  /**
   * AGENTS.md guidance chosen by the app, used INSTEAD of the checkout's AGENTS.md files: for a pull
   * request from a fork, the base branch's (the fork's own files are untrusted). Absent: the runner
   * reads AGENTS.md from the checkout. Content is capped by the runner like the checkout's (32 KiB).
   */
  agentsDocs: z.array(z.object({ path: z.string().min(1), content: z.string() })).optional(),
  /** What the requester asked for (untrusted text). */
  instruction: z.string(),
  /** Thread context, oldest first (untrusted text). */
  context: z.array(ContextItem).default([]),
  /** The requester's GitHub login, for attribution. */
  requester: z.string().optional(),
  model: z.object({
    /** OpenAI-compatible base URL (`…/v1`); the app's model gateway in production. */
    baseUrl: z.string().url().optional(),
    /** Bearer token for `baseUrl` (a task token for the gateway). */
    apiKey: z.string().optional(),
    name: z.string().min(1),
    reasoningEffort: ReasoningEffort.optional(),
    /** Retries of one model request on 429, 5xx, connection errors and cut streams. */
    maxRetries: z.number().int().min(0).max(10).default(4),
    /** First retry delay, ms; doubles on each retry (with jitter), capped at 30 s. */
    retryBaseMs: z.number().int().min(0).default(1000),
  }),
  limits: Limits.default(Limits.parse({})),
  setup: z
    .object({
      /** A bash script run in the repository root with network before the agent starts. */
      script: z.string().optional(),
      /** With no script: detect the package manager and install dependencies. */
      autoInstall: z.boolean().default(true),
      /** A bash script run (with network) after a cached environment is restored, instead of setup. */
      maintenance: z.string().optional(),
    })
    .default({ autoInstall: true }),
  /**
   * How commands are isolated: `bubblewrap` (default) or `container` when the surrounding container is
   * the sandbox (ECS Fargate), where the runner still clears the environment.
   */
  sandbox: z.enum(['bubblewrap', 'container']).default('bubblewrap'),
  /**
   * The agent phase's network (`agent_network.allow` of `.github/codex.yml`), through the app's agent
   * proxy. Absent: the agent's commands have no network (the default). The setup phase is unaffected.
   */
  network: z
    .object({
      /**
       * `http://<task id>:<secret>@<host>:<port>`: the app's agent proxy with the task's proxy
       * credentials (Basic, valid only while the task runs; not the model token) as userinfo,
       * percent-encoded as in any URL.
       */
      proxyUrl: z
        .string()
        .url()
        .refine((u) => { const url = new URL(u); return url.protocol === 'http:' && url.username !== '' && url.password !== ''; }, 'must be an http:// URL with the task id and secret as user and password'),
      /** The hosts the proxy allows (informational for the runner; the proxy enforces them). */
      allow: z.array(z.string().min(1)).max(200),
    })
    .optional(),
  /** Where to send progress and the result over HTTP(S), in addition to stdout (ECS). */
  report: z.object({ url: z.string().url(), token: z.string().min(1) }).optional(),
  /** For `review` tasks: the pull request, focus and earlier findings. */
  review: ReviewSpec.optional(),
  /** The cached environment: restore instead of setup, or save after setup. Absent: setup always runs. */
  environment: EnvironmentSpec.optional(),
});
/** Validated TaskSpec (defaults applied). */
export type TaskSpec = z.infer<typeof TaskSpec>;
/** TaskSpec as written by a producer (defaults optional). */
export type TaskSpecInput = z.input<typeof TaskSpec>;

/** A step of the agent's plan, as set by the `update_plan` tool. */
export const PlanStep = z.object({
  step: z.string(),
  status: z.enum(['pending', 'in_progress', 'completed']),
});
export type PlanStep = z.infer<typeof PlanStep>;

/**
 * What a command wrote (stdout and stderr interleaved), clipped for the record: the whole output when
 * it is at most 4000 characters (then `tail` is ''), else its first and last 2000 characters.
 */
export const CommandOutput = z.object({
  head: z.string(),
  tail: z.string().default(''),
  /** Total UTF-8 bytes written. */
  bytes: z.number().int().nonnegative(),
});
export type CommandOutput = z.infer<typeof CommandOutput>;

/** A command run during the task, with its outcome. */
export const CommandRecord = z.object({
  phase: Phase,
  command: z.array(z.string()),
  /** Directory relative to the repository root (`.` for the root). */
  workdir: z.string(),
  /** Exit code; null when killed by a signal or a timeout. */
  exitCode: z.number().int().nullable(),
  durationMs: z.number().nonnegative(),
  timedOut: z.boolean().default(false),
  /** The command's output, clipped (absent from runners that do not record it). */
  output: CommandOutput.optional(),
});
export type CommandRecord = z.infer<typeof CommandRecord>;

/** Token and time usage of a task. */
export const Usage = z.object({
  inputTokens: z.number().int().nonnegative(),
  cachedInputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  reasoningTokens: z.number().int().nonnegative().default(0),
  /** Model requests that completed. */
  turns: z.number().int().nonnegative(),
  /** Wall time per phase, ms. */
  phaseMs: z.partialRecord(Phase, z.number().nonnegative()),
  /** Time spent waiting for the model (streams and retries), ms. */
  modelMs: z.number().nonnegative().default(0),
  /** Time spent in commands the agent ran, ms. */
  commandMs: z.number().nonnegative().default(0),
  totalMs: z.number().nonnegative(),
});
export type Usage = z.infer<typeof Usage>;

/** Git file modes a change may carry. */
export const FileMode = z.enum(['100644', '100755', '120000']);

/** One file's change against the base SHA. Content is base64 (symlinks: the link target). */
export const FileChange = z.discriminatedUnion('action', [
  z.object({
    action: z.enum(['add', 'modify']),
    path: z.string().min(1),
    mode: FileMode,
    contentBase64: z.string(),
  }),
  z.object({ action: z.literal('delete'), path: z.string().min(1) }),
]);
export type FileChange = z.infer<typeof FileChange>;

/**
 * A review finding (for `review` tasks). Priority 0 (blocker) to 3 (nit). Lines are 1-based, in the
 * reviewed head's version of `path` (relative to the repository root): `line` is the last line,
 * `startLine` (when the finding spans several lines) the first. `confidence` is 0..1.
 */
export const ReviewFinding = z.object({
  title: z.string(),
  body: z.string(),
  priority: z.number().int().min(0).max(3),
  path: z.string(),
  startLine: z.number().int().positive().optional(),
  line: z.number().int().positive(),
  confidence: z.number().min(0).max(1).optional(),
});
export type ReviewFinding = z.infer<typeof ReviewFinding>;

const reviewScore = z.number({ error: 'must be a number from 0 to 1' }).min(0, { error: 'must be at least 0' }).max(1, { error: 'must be at most 1' });
const reviewLine = z.number({ error: 'must be a whole line number' }).int({ error: 'must be a whole line number' }).positive({ error: 'must be at least 1' });

/**
 * One finding of {@link ReviewOutput}, in the shape of Codex's review output: `priority` 0 (P0,
 * blocker) to 3 (P3, minor); `confidence_score` 0..1; `code_location.absolute_file_path` absolute in
 * the checkout or relative to the repository root; `line_range` 1-based and inclusive.
 */
export const ReviewOutputFinding = z.object({
  title: z.string().trim().min(1, { error: 'must not be empty' }),
  body: z.string(),
  confidence_score: reviewScore,
  priority: z.number({ error: 'must be 0, 1, 2 or 3' }).int({ error: 'must be 0, 1, 2 or 3' }).min(0, { error: 'must be 0, 1, 2 or 3' }).max(3, { error: 'must be 0, 1, 2 or 3' }),
  code_location: z.object({
    absolute_file_path: z.string().trim().min(1, { error: 'must not be empty' }),
    line_range: z.object({ start: reviewLine, end: reviewLine }),
  }),
});
export type ReviewOutputFinding = z.infer<typeof ReviewOutputFinding>;

/**
 * The JSON object a review agent ends with: Codex's review output format
 * (`findings`, `overall_correctness` = `patch is correct` | `patch is incorrect`,
 * `overall_explanation`, `overall_confidence_score` 0..1) plus our one addition, `resolved_findings`:
 * ids of earlier findings (given to the agent) that the reviewed head fixes.
 */
export const ReviewOutput = z.object({
  findings: z.array(ReviewOutputFinding),
  overall_correctness: z.enum(['patch is correct', 'patch is incorrect'], { error: 'must be "patch is correct" or "patch is incorrect"' }),
  overall_explanation: z.string(),
  overall_confidence_score: reviewScore,
  resolved_findings: z.array(z.string().min(1)).optional(),
});
export type ReviewOutput = z.infer<typeof ReviewOutput>;

/** A review's overall verdict, as a TaskResult carries it (from {@link ReviewOutput}). */
export const ReviewVerdict = z.object({
  /** The reviewer's verdict on the patch. */
  correctness: z.enum(['correct', 'incorrect']),
  /** One to three sentences justifying it (model text, untrusted). */
  explanation: z.string(),
  /** 0..1. */
  confidence: z.number().min(0).max(1),
  /** Ids of earlier findings the reviewed head fixes (only ids the agent was given count). */
  resolvedFindings: z.array(z.string()).default([]),
});
export type ReviewVerdict = z.infer<typeof ReviewVerdict>;

/** Why the agent loop stopped. */
export const StopReason = z.enum([
  'completed',
  'turn_limit',
  'time_limit',
  'token_limit',
  'cancelled',
  'model_error',
  'error',
]);
export type StopReason = z.infer<typeof StopReason>;

/**
 * How the setup phase went: `succeeded` (the script or every install command exited 0), `failed`
 * (the script failed, or an install command failed and the agent went on without it), `skipped`
 * (nothing to install, installs turned off, a tool missing, or work in place). `reason` says why for
 * `failed` and `skipped` (runner text: the command and its exit, or what was missing).
 */
export const SetupStatus = z.object({
  status: z.enum(['succeeded', 'failed', 'skipped']),
  reason: z.string().optional(),
});
export type SetupStatus = z.infer<typeof SetupStatus>;

/**
 * What the runner did with the task's environment: `restored` (setup skipped), `built` (setup ran;
 * `savedBytes` when the archive was written to `save`), or `none` (setup ran, nothing saved: no
 * `save`, or the key did not match the checkout). `restoreFailure` says why a given archive was not
 * used (refused as unsafe, unreadable); the app then drops it from its cache.
 */
export const EnvironmentOutcome = z.object({
  key: z.string(),
  status: z.enum(['restored', 'built', 'none']),
  /** Size of the saved archive, bytes. */
  savedBytes: z.number().int().nonnegative().optional(),
  /** Why nothing was saved after setup (too large, upload failed, key mismatch). */
  saveFailure: z.string().optional(),
  restoreFailure: z.string().optional(),
});
export type EnvironmentOutcome = z.infer<typeof EnvironmentOutcome>;

/** TaskResult: what a runner returns. Always produced, also on failure (with partial work). */
export const TaskResult = z.object({
  version: z.literal(CONTRACT_VERSION).default(CONTRACT_VERSION),
  id: z.string(),
  status: z.enum(['succeeded', 'no_changes', 'failed', 'cancelled']),
  stopReason: StopReason,
  failure: z.object({ phase: Phase, reason: z.string() }).optional(),
  /**
   * The commit the changes are against: the checked-out commit, i.e. the spec's `repository.headSha`
   * for pull request work, else `repository.baseSha`. The app refuses a result on any other commit.
   */
  baseSha: z.string(),
  /** The agent's final message (markdown with Summary and Testing sections). */
  summary: z.string(),
  changes: z.array(FileChange),
  commitMessage: z.string(),
  pullRequest: z.object({ title: z.string(), body: z.string() }),
  commands: z.array(CommandRecord),
  findings: z.array(ReviewFinding).default([]),
  /** For `review` tasks: the overall verdict and the earlier findings now resolved. */
  review: ReviewVerdict.optional(),
  plan: z.array(PlanStep).default([]),
  /** How the setup phase went (absent from runners that predate it). */
  setup: SetupStatus.optional(),
  usage: Usage,
  /** What happened to the task's environment (absent when the spec had none). */
  environment: EnvironmentOutcome.optional(),
});
export type TaskResult = z.infer<typeof TaskResult>;

/**
 * Progress events, one JSON object per line on the runner's stdout (and POSTed to `report.url` when
 * set). `at` is an ISO-8601 timestamp.
 */
export const ProgressEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('phase'),
    at: z.string(),
    phase: Phase,
    status: z.enum(['started', 'completed', 'failed']),
    durationMs: z.number().optional(),
    reason: z.string().optional(),
  }),
  z.object({
    type: z.literal('plan'),
    at: z.string(),
    explanation: z.string().optional(),
    plan: z.array(PlanStep),
  }),
  z.object({
    type: z.literal('command_begin'),
    at: z.string(),
    phase: Phase,
    command: z.array(z.string()),
    workdir: z.string(),
  }),
  z.object({
    type: z.literal('command_end'),
    at: z.string(),
    phase: Phase,
    command: z.array(z.string()),
    workdir: z.string(),
    exitCode: z.number().int().nullable(),
    durationMs: z.number(),
    timedOut: z.boolean(),
    /** The command's output, clipped as in CommandRecord (optional). */
    output: CommandOutput.optional(),
  }),
  z.object({
    type: z.literal('patch'),
    at: z.string(),
    ok: z.boolean(),
    files: z.array(z.object({ path: z.string(), kind: z.string() })),
    error: z.string().optional(),
  }),
  z.object({
    type: z.literal('model_request'),
    at: z.string(),
    turn: z.number().int(),
    status: z.enum(['started', 'completed', 'retrying']),
    usage: z
      .object({ inputTokens: z.number(), cachedInputTokens: z.number(), outputTokens: z.number() })
      .optional(),
    reason: z.string().optional(),
  }),
  z.object({ type: z.literal('message'), at: z.string(), text: z.string() }),
  z.object({ type: z.literal('log'), at: z.string(), level: z.enum(['info', 'warn', 'error']), message: z.string() }),
  /**
   * The environment of the task: `restored` (setup skipped; `ageMs` since it was saved, `durationMs`
   * of the restore), `built` (setup ran for `durationMs`; `saved` when it is cached for next time,
   * `bytes` its size), or `restore_failed` (`reason`; setup runs instead).
   */
  z.object({
    type: z.literal('environment'),
    at: z.string(),
    status: z.enum(['restored', 'built', 'restore_failed']),
    /** A restore's source: the archive, or an unpacked copy the backend prepared (see EnvironmentSpec `restore`). */
    restoredFrom: z.enum(['archive', 'unpacked']).optional(),
    durationMs: z.number().nonnegative().optional(),
    ageMs: z.number().nonnegative().optional(),
    saved: z.boolean().optional(),
    bytes: z.number().int().nonnegative().optional(),
    reason: z.string().optional(),
  }),
  z.object({ type: z.literal('result'), at: z.string(), result: TaskResult }),
]);
export type ProgressEvent = z.infer<typeof ProgressEvent>;

/** A progress event before its timestamp is stamped. */
export type ProgressEventInput = ProgressEvent extends infer E
  ? E extends { at: string }
    ? Omit<E, 'at'>
    : never
  : never;

/** Environment variables of a claimed runner (ECS: set as RunTask container overrides). */
export const CLAIM_ENV = {
  taskId: 'CODEX_TASK_ID',
  appUrl: 'CODEX_APP_URL',
  ticket: 'CODEX_CLAIM_TICKET',
} as const;

/** Exit code of `runner --claim` when the TaskSpec could not be claimed. */
export const CLAIM_FAILED_EXIT_CODE = 3;
/** Exit code of the runner when the task ran but its result could not be delivered to the app. */
export const RESULT_UNDELIVERED_EXIT_CODE = 4;

/**
 * Formats a zod error as one line per issue naming the field path, e.g.
 * `repository.baseSha: must be a 40-character hex git SHA`.
 */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('\n');
}
