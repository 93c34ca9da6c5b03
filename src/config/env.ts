/**
 * The app's environment, validated with zod at start-up. Variables use the standard names where they
 * exist: Probot's (https://probot.github.io/docs/configuration/), the OpenAI SDK's
 * (https://github.com/openai/openai-node#usage), the AWS SDK's `AWS_REGION`; ours start with `CODEX_`.
 * A variable set to the empty string counts as not set. Errors name the variable and never show the
 * value of a secret (`PRIVATE_KEY`, `WEBHOOK_SECRET`, `OPENAI_API_KEY`).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { getPrivateKey } from '@probot/get-private-key';
import { z } from 'zod';
import { ReasoningEffort } from '../contract.ts';

/** Variables whose values are never shown in errors. */
const SECRETS = new Set(['PRIVATE_KEY', 'WEBHOOK_SECRET', 'OPENAI_API_KEY']);

/** A whole number ≥ 1 written in decimal digits (no signs, separators or exponents). */
const positiveInt = () =>
  z
    .string()
    .regex(/^\d+$/, 'expected a positive integer')
    .transform(Number)
    .refine((n) => n >= 1 && Number.isSafeInteger(n), 'expected a positive integer');

/** A decimal number ≥ 0 (e.g. `0`, `1.5`). */
const nonNegativeNumber = () =>
  z
    .string()
    .regex(/^\d+(?:\.\d+)?$/, 'expected a number ≥ 0')
    .transform(Number)
    .refine((n) => Number.isFinite(n), 'expected a number ≥ 0');

/** A decimal number > 0 (e.g. `1`, `0.5`). */
const positiveNumber = () =>
  nonNegativeNumber().refine((n) => n > 0, 'expected a number > 0');

const httpUrl = (what: string) =>
  z
    .string()
    .refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol), `expected an http(s) URL ${what}`)
    .transform((value) => value.replace(/\/+$/, ''));

const bool = z
  .string()
  .transform((value) => value.toLowerCase())
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], { error: 'expected true or false' }))
  .transform((value) => ['true', '1', 'yes', 'on'].includes(value));

/** A comma-separated list; blanks around items and empty items are dropped. */
const list = (item: z.ZodString) =>
  z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part !== ''),
    )
    .pipe(z.array(item));

/** A POSIX user name (as useradd accepts it) or `uid:gid`. */
const RUNNER_USER = /^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|\d{1,10}:\d{1,10})$/;
const ARGV_MESSAGE = 'expected a JSON array of strings (argv), e.g. ["node","runner.js"]';

const PRICES_MESSAGE =
  'expected a JSON object of model name to {"inputPerMillion","cachedInputPerMillion","outputPerMillion"} (USD per million tokens, numbers ≥ 0)';
const price = z.number({ error: PRICES_MESSAGE }).nonnegative(PRICES_MESSAGE);
/** Token prices of one model, USD per million tokens. */
const TokenPrices = z.strictObject(
  { inputPerMillion: price, cachedInputPerMillion: price, outputPerMillion: price },
  { error: PRICES_MESSAGE },
);

/** GitHub login: letters, digits and hyphens, optionally with GitHub Apps' `[bot]` suffix. */
const GITHUB_LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\[bot\])?$/;

/** Log levels Probot accepts (its `validateLogLevel`). */
export const LogLevel = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'], {
  error: 'expected one of trace, debug, info, warn, error, fatal',
});
/** One of `trace`, `debug`, `info`, `warn`, `error`, `fatal`. */
export type LogLevel = z.infer<typeof LogLevel>;

/**
 * Schema of the environment variables, each as a string (unset ones absent). Requirements that
 * depend on other variables (setup mode, the ECS backend) are checked by {@link loadEnvConfig}.
 */
export const EnvSchema = z.object({
  NODE_ENV: z.string().optional(),
  /** The GitHub App's ID (a positive integer, from the App's settings page). */
  APP_ID: positiveInt().optional(),
  /** The App's private key: PEM (PKCS#1 or PKCS#8), with real newlines, literal `\n` or base64-encoded. */
  PRIVATE_KEY: z.string().optional(),
  /** Path of the App's `.pem` private key file (used when `PRIVATE_KEY` is not set). */
  PRIVATE_KEY_PATH: z.string().optional(),
  WEBHOOK_SECRET: z.string().optional(),
  /** GitHub Enterprise Server host, `host[:port]` (the API is `${GHE_PROTOCOL}://${GHE_HOST}/api/v3`). */
  GHE_HOST: z
    .string()
    .regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/, 'expected a host name with an optional :port (no scheme or path)')
    .optional(),
  GHE_PROTOCOL: z.enum(['http', 'https'], { error: 'expected http or https' }).default('https'),
  PORT: z
    .string()
    .regex(/^\d+$/, 'expected a port number (0-65535)')
    .transform(Number)
    .refine((n) => n <= 65_535, 'expected a port number (0-65535)')
    .default(3000),
  /** Address the HTTP server binds to (Node's default when unset). */
  HOST: z.string().optional(),
  LOG_LEVEL: LogLevel.default('info'),
  OPENAI_API_KEY: z.string({ error: 'required (the OpenAI API key the model gateway forwards with)' }),
  OPENAI_BASE_URL: httpUrl('(the OpenAI-compatible API base, e.g. https://api.openai.com/v1)').default(
    'https://api.openai.com/v1',
  ),
  CODEX_PUBLIC_URL: httpUrl('(where GitHub users and runners reach the app)').optional(),
  CODEX_DATA_DIR: z.string().default('.data'),
  CODEX_CONCURRENCY: positiveInt().default(2),
  CODEX_MENTION: z
    .string()
    .regex(/^@[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/, 'expected @ followed by a name, e.g. @codex')
    .default('@codex'),
  CODEX_MODEL: z.string().default('gpt-5.1-codex'),
  CODEX_REASONING_EFFORT: z
    .enum(ReasoningEffort.options, { error: `expected one of ${ReasoningEffort.options.join(', ')}` })
    .optional(),
  /** Bot logins (exact, e.g. `renovate[bot]`) whose mentions may start tasks. */
  CODEX_ALLOWED_BOTS: list(z.string().regex(GITHUB_LOGIN, 'expected comma-separated GitHub logins')).default([]),
  CODEX_TASK_TIMEOUT_MINUTES: positiveInt().default(60),
  CODEX_MAX_TOKENS: positiveInt().default(4_000_000),
  /**
   * Token prices per model for the task page's estimated cost (JSON, USD per million tokens), e.g.
   * `{"gpt-5.1-codex":{"inputPerMillion":1.25,"cachedInputPerMillion":0.125,"outputPerMillion":10}}`.
   * Unset: the page shows tokens and no cost.
   */
  CODEX_TOKEN_PRICES: z
    .string()
    .transform((value, ctx) => {
      try {
        return JSON.parse(value) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: PRICES_MESSAGE });
        return z.NEVER;
      }
    })
    .pipe(z.record(z.string(), TokenPrices, { error: PRICES_MESSAGE }))
    .optional(),
  /** Retries of one model request in the runner (429, 5xx, cut streams). */
  CODEX_MODEL_RETRIES: z.coerce.number({ error: 'expected an integer from 0 to 10' }).int('expected an integer from 0 to 10').min(0, 'expected an integer from 0 to 10').max(10, 'expected an integer from 0 to 10').default(4),
  /** First retry delay of a model request, ms (doubles each retry). */
  CODEX_MODEL_RETRY_BASE_MS: z.coerce.number({ error: 'expected a whole number of milliseconds' }).int('expected a whole number of milliseconds').min(0, 'expected a whole number of milliseconds').default(1000),
  CODEX_RUNNER_BACKEND: z.enum(['local', 'ecs'], { error: 'expected local or ecs' }).default('local'),
  CODEX_RUNNER_COMMAND: z
    .string()
    .transform((value, ctx) => {
      try {
        return JSON.parse(value) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: ARGV_MESSAGE });
        return z.NEVER;
      }
    })
    .pipe(
      z
        .array(z.string({ error: ARGV_MESSAGE }), { error: ARGV_MESSAGE })
        .min(1, 'expected a non-empty JSON array of strings (argv)')
        .refine((argv) => argv[0] !== '', 'expected a program name as the first element'),
    )
    .optional(),
  /**
   * How much lower the local runners' CPU priority is than the app's (a nice increment, 0 to 19; 0:
   * the same); see LocalRunnerOptions.nice.
   */
  CODEX_RUNNER_NICE: z.coerce
    .number({ error: 'expected an integer from 0 to 19' })
    .int('expected an integer from 0 to 19')
    .min(0, 'expected an integer from 0 to 19')
    .max(19, 'expected an integer from 0 to 19')
    .optional(),
  /** Keep one local runner started ahead of the next task (see LocalRunnerOptions.standby). */
  CODEX_RUNNER_STANDBY: bool.default(true),
  /**
   * The user the local runner runs as (a user name, or `uid:gid`), so that an escape from the
   * sandbox cannot read the app's process or files; see LocalRunnerOptions.runAs. Never root.
   */
  CODEX_RUNNER_USER: z
    .string()
    .trim()
    .regex(RUNNER_USER, 'expected a user name or uid:gid, e.g. codex-runner or 1500:1500')
    .refine((value) => value !== 'root' && !/^0+:|:0+$/.test(value), 'must not be root (uid 0 or gid 0)')
    .optional(),
  /**
   * Port of the agent-phase network proxy (src/proxy/), which serves `agent_network` allowlists of
   * `.github/codex.yml`; 0 = any free port (local backend only). Unset: no proxy, agent commands
   * never have network.
   */
  CODEX_AGENT_PROXY_PORT: z
    .string()
    .regex(/^\d+$/, 'expected a port number (0-65535)')
    .transform(Number)
    .refine((n) => n <= 65_535, 'expected a port number (0-65535)')
    .optional(),
  /** Bind address of the agent proxy: default 127.0.0.1 with the local backend, all interfaces with ECS. */
  CODEX_AGENT_PROXY_HOST: z.string().trim().min(1).optional(),
  /**
   * How runners reach the agent proxy, `http://host:port` (ECS: inside the VPC, e.g. the app's
   * service-discovery name; required there). Default with the local backend: `http://127.0.0.1:<port>`.
   */
  CODEX_AGENT_PROXY_URL: z
    .string()
    .refine(
      (value) => URL.canParse(value) && new URL(value).protocol === 'http:' && /^\/*$/.test(new URL(value).pathname) && new URL(value).username === '',
      'expected http://host:port (how runners reach the agent proxy, e.g. http://codex-app.internal:3128)',
    )
    .transform((value) => value.replace(/\/+$/, ''))
    .optional(),
  CODEX_ECS_CLUSTER: z.string().optional(),
  CODEX_ECS_TASK_DEFINITION: z.string().optional(),
  CODEX_ECS_CONTAINER_NAME: z.string().default('runner'),
  CODEX_ECS_SUBNETS: list(z.string()).optional(),
  CODEX_ECS_SECURITY_GROUPS: list(z.string()).default([]),
  /** Security groups of the setup task (HTTPS egress); unset: the agent task's groups. */
  CODEX_ECS_SETUP_SECURITY_GROUPS: list(z.string()).optional(),
  /** S3 bucket of the ECS backend's environment archives (presigned URLs); unset: no cache on ECS. */
  CODEX_ENV_BUCKET: z
    .string()
    .trim()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name (3–63 lower-case letters, digits, dots, hyphens)')
    .optional(),
  /** How long a cached environment stays fresh, hours (issue 12); 0 turns environments off. */
  CODEX_ENV_CACHE_HOURS: nonNegativeNumber().default(12),
  /** Largest environment archive, MiB. */
  CODEX_ENV_MAX_MB: positiveNumber().default(2048),
  /** Total size of the local backend's environment cache, MiB (least recently used evicted first). */
  CODEX_ENV_CACHE_MAX_MB: positiveNumber().default(10_240),
  /** Local backend: how many environments keep an unpacked copy ready for the next task; 0 = off. */
  CODEX_ENV_UNPACKED_COPIES: z.coerce.number().int().min(0).max(64).default(2),
  CODEX_ECS_ASSIGN_PUBLIC_IP: bool.default(false),
  AWS_REGION: z.string().optional(),
  /** Probot's GitHub request throttling (on by default; off only against a local GitHub stand-in). */
  CODEX_GITHUB_THROTTLE: bool.default(true),
});

/** How runners are started. */
export type RunnerConfig =
  | {
      backend: 'local';
      /** argv that starts the runner program (default: this package's `codex-cloud runner`). */
      command?: string[];
      /**
       * `CODEX_RUNNER_USER`: the user the runner runs as, a user name (resolved when the backend is
       * created) or `uid:gid`; never root. Unset: the app's own user.
       */
      user?: string;
      /** `CODEX_RUNNER_NICE`: how much lower the runners' CPU priority is than the app's (default 10; 0: the same). */
      nice?: number;
      /** `CODEX_RUNNER_STANDBY`: keep one runner started ahead of the next task (default true). */
      standby: boolean;
    }
  | {
      backend: 'ecs';
      /** Cluster name or ARN. */
      cluster: string;
      /** Task definition family, `family:revision` or ARN of the runner task. */
      taskDefinition: string;
      /** Name of the runner container in the task definition. */
      containerName: string;
      /** Subnet IDs for the task's awsvpc network configuration (at least one). */
      subnets: string[];
      /** Security group IDs of the agent task (may be empty: the VPC's default group applies). */
      securityGroups: string[];
      /**
       * Security group IDs of the setup task (`CODEX_ECS_SETUP_SECURITY_GROUPS`: HTTPS egress, for
       * a cache miss); unset: the setup task gets `securityGroups`.
       */
      setupSecurityGroups?: string[];
      /** `CODEX_ENV_BUCKET`: S3 bucket of environment archives (the SDK's `AWS_ENDPOINT_URL_S3` applies). */
      environmentBucket?: string;
      assignPublicIp: boolean;
      /** AWS region (`AWS_REGION`); the SDK's own resolution applies when unset. */
      region?: string;
    };

/** Settings shared by setup mode and normal operation. */
type BaseAppConfig = {
  github: {
    /** GitHub Enterprise Server `host[:port]`; unset for github.com. */
    host?: string;
    protocol: 'http' | 'https';
    /** REST API base URL: `https://api.github.com`, or `${protocol}://${host}/api/v3`. */
    apiUrl: string;
  };
  /**
   * Use Probot's throttling of GitHub requests (`CODEX_GITHUB_THROTTLE`, default true). It spaces
   * writes about a second apart as github.com asks; turn it off only against a local stand-in.
   */
  githubThrottle: boolean;
  /** HTTP port of the app (0 = any free port). */
  port: number;
  /** Bind address; Node's default when unset. */
  host?: string;
  logLevel: LogLevel;
  openai: {
    apiKey: string;
    /** OpenAI-compatible base URL without a trailing slash, e.g. `https://api.openai.com/v1`. */
    baseUrl: string;
  };
  /** Where GitHub users and runners reach the app, without a trailing slash. */
  publicUrl: string;
  /** Directory for the app's state (task store, logs), as given (relative to the working directory). */
  dataDir: string;
  /** Tasks that run at once. */
  concurrency: number;
  /** The mention the app answers to, e.g. `@codex`. */
  mention: string;
  /** Default model name. */
  model: string;
  reasoningEffort?: z.infer<typeof ReasoningEffort>;
  /** Bot logins allowed to trigger tasks (exact, case as given; compare case-insensitively). */
  allowedBots: string[];
  /** Wall-clock limit of one task, ms. */
  taskTimeoutMs: number;
  /** Token budget of one task (input + output tokens). */
  maxTokens: number;
  /** Token prices per model name, USD per million tokens (`CODEX_TOKEN_PRICES`), for estimated costs. */
  tokenPrices?: Record<string, { inputPerMillion: number; cachedInputPerMillion: number; outputPerMillion: number }>;
  /** Retry policy of the runner's model requests (`CODEX_MODEL_RETRIES`, `CODEX_MODEL_RETRY_BASE_MS`). */
  modelRetry: { retries: number; baseMs: number };
  runner: RunnerConfig;
  /**
   * The agent-phase network proxy (`CODEX_AGENT_PROXY_*`); absent when `CODEX_AGENT_PROXY_PORT` is
   * unset. `url` is how runners reach it (absent: `http://127.0.0.1:<bound port>`, local backend).
   */
  agentProxy?: { port: number; host: string; url?: string };
  /**
   * Environments (issue 12, `CODEX_ENV_*`): how long a cached environment stays fresh (`maxAgeMs`),
   * the largest archive (`maxArchiveBytes`), the local cache's total size (`maxTotalBytes`) and how many
   * environments keep an unpacked copy ready (`unpackedCopies`, local backend).
   * Absent when `CODEX_ENV_CACHE_HOURS` is 0: setup runs in every task.
   */
  environments?: { maxAgeMs: number; maxArchiveBytes: number; maxTotalBytes: number; unpackedCopies: number };
};

/**
 * The app's validated configuration. `setupMode: true` is the first start before the GitHub App
 * exists (Probot's manifest flow): the App credentials may then be missing.
 */
export type AppConfig = BaseAppConfig &
  (
    | {
        setupMode: false;
        /** GitHub App ID. */
        appId: number;
        /** The App's private key, PEM with real newlines. */
        privateKey: string;
        webhookSecret: string;
      }
    | { setupMode: true; appId?: number; privateKey?: string; webhookSecret?: string }
  );

/** One bad variable. */
export type ConfigIssue = { variable: string; message: string };

/**
 * The environment is invalid. `issues` name every bad variable; `message` lists them, one
 * `NAME: problem` line each (secret values are never included).
 */
export class ConfigError extends Error {
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    super(`Invalid configuration in the environment:\n${issues.map((i) => `  ${i.variable}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** The environment with empty strings removed (an empty variable counts as unset). */
function present(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== ''));
}

/**
 * Whether the app starts in setup mode (Probot's manifest flow to create the GitHub App): `APP_ID` or
 * the private key (`PRIVATE_KEY` / `PRIVATE_KEY_PATH`) is missing and `NODE_ENV` is not `production`.
 */
export function isSetupMode(env: NodeJS.ProcessEnv): boolean {
  const vars = present(env);
  const missing = !vars.APP_ID || (!vars.PRIVATE_KEY && !vars.PRIVATE_KEY_PATH);
  return missing && vars.NODE_ENV !== 'production';
}

/** Shows a non-secret value in a message, quoted and shortened. */
function shown(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

/** Normalises a private key as Probot does (literal `\n`, base64, one-line PEM); undefined if not a key. */
function normalisePrivateKey(text: string): string | undefined {
  try {
    return getPrivateKey({ env: { PRIVATE_KEY: text } }) ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Validates the environment and builds the app's configuration.
 * @param env usually `process.env`.
 * @param opts.cwd directory `PRIVATE_KEY_PATH` is relative to (default `process.cwd()`).
 * @returns the typed, camelCased configuration (times in ms).
 * @throws ConfigError listing every bad or missing variable, e.g.
 *   `CODEX_CONCURRENCY: expected a positive integer, got "abc"`. The private key file is read here
 *   (synchronously); a missing or unreadable file is an issue of `PRIVATE_KEY_PATH`.
 */
export function loadEnvConfig(env: NodeJS.ProcessEnv, opts: { cwd?: string } = {}): AppConfig {
  const vars = present(env);
  const issues: ConfigIssue[] = [];
  const add = (variable: string, message: string) => issues.push({ variable, message });

  const parsed = EnvSchema.safeParse(vars);
  if (!parsed.success) {
    const seen = new Set<string>();
    for (const issue of parsed.error.issues) {
      const variable = String(issue.path[0] ?? '(environment)');
      if (seen.has(variable)) continue;
      seen.add(variable);
      const value = vars[variable];
      const got = value === undefined || SECRETS.has(variable) ? '' : `, got ${shown(value)}`;
      add(variable, `${issue.message}${got}`);
    }
  }

  // Private key: PRIVATE_KEY wins over PRIVATE_KEY_PATH, as in Probot.
  let privateKey: string | undefined;
  if (vars.PRIVATE_KEY) {
    privateKey = normalisePrivateKey(vars.PRIVATE_KEY);
    if (!privateKey) add('PRIVATE_KEY', 'expected a PEM private key (PKCS#1 or PKCS#8; literal \\n and base64 accepted)');
  } else if (vars.PRIVATE_KEY_PATH) {
    const path = resolve(opts.cwd ?? process.cwd(), vars.PRIVATE_KEY_PATH);
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      add('PRIVATE_KEY_PATH', `cannot read ${shown(vars.PRIVATE_KEY_PATH)} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (text !== undefined) {
      privateKey = normalisePrivateKey(text);
      if (!privateKey) add('PRIVATE_KEY_PATH', `${shown(vars.PRIVATE_KEY_PATH)} does not hold a PEM private key`);
    }
  }

  const setupMode = isSetupMode(env);
  if (!setupMode) {
    const why = vars.NODE_ENV === 'production' ? ' (NODE_ENV is production)' : '';
    if (!vars.APP_ID) add('APP_ID', `required${why}: the GitHub App's ID`);
    if (!vars.PRIVATE_KEY && !vars.PRIVATE_KEY_PATH) {
      add('PRIVATE_KEY', `required${why}: set PRIVATE_KEY or PRIVATE_KEY_PATH to the GitHub App's private key`);
    }
    if (!vars.WEBHOOK_SECRET) add('WEBHOOK_SECRET', `required${why}: the GitHub App's webhook secret`);
  }

  if (vars.CODEX_RUNNER_BACKEND === 'ecs') {
    if (!vars.CODEX_ECS_CLUSTER) add('CODEX_ECS_CLUSTER', 'required when CODEX_RUNNER_BACKEND is ecs');
    if (!vars.CODEX_ECS_TASK_DEFINITION) add('CODEX_ECS_TASK_DEFINITION', 'required when CODEX_RUNNER_BACKEND is ecs');
    if (!vars.CODEX_ECS_SUBNETS?.split(',').some((subnet) => subnet.trim() !== '')) {
      add('CODEX_ECS_SUBNETS', 'required when CODEX_RUNNER_BACKEND is ecs: a comma-separated list of at least one subnet ID');
    }
  }

  if (vars.CODEX_AGENT_PROXY_PORT !== undefined && vars.CODEX_RUNNER_BACKEND === 'ecs') {
    if (!vars.CODEX_AGENT_PROXY_URL) add('CODEX_AGENT_PROXY_URL', 'required with CODEX_AGENT_PROXY_PORT when CODEX_RUNNER_BACKEND is ecs: how runners reach the agent proxy inside the VPC');
    if (vars.CODEX_AGENT_PROXY_PORT === '0') add('CODEX_AGENT_PROXY_PORT', 'must be a fixed port when CODEX_RUNNER_BACKEND is ecs (security groups name it)');
  }

  if (issues.length || !parsed.success) throw new ConfigError(issues);
  const e = parsed.data;

  const runner: RunnerConfig =
    e.CODEX_RUNNER_BACKEND === 'ecs'
      ? {
          backend: 'ecs',
          cluster: e.CODEX_ECS_CLUSTER!,
          taskDefinition: e.CODEX_ECS_TASK_DEFINITION!,
          containerName: e.CODEX_ECS_CONTAINER_NAME,
          subnets: e.CODEX_ECS_SUBNETS!,
          securityGroups: e.CODEX_ECS_SECURITY_GROUPS,
          ...(e.CODEX_ECS_SETUP_SECURITY_GROUPS?.length ? { setupSecurityGroups: e.CODEX_ECS_SETUP_SECURITY_GROUPS } : {}),
          ...(e.CODEX_ENV_BUCKET ? { environmentBucket: e.CODEX_ENV_BUCKET } : {}),
          assignPublicIp: e.CODEX_ECS_ASSIGN_PUBLIC_IP,
          ...(e.AWS_REGION ? { region: e.AWS_REGION } : {}),
        }
      : {
          backend: 'local',
          ...(e.CODEX_RUNNER_COMMAND ? { command: e.CODEX_RUNNER_COMMAND } : {}),
          ...(e.CODEX_RUNNER_USER ? { user: e.CODEX_RUNNER_USER } : {}),
          ...(e.CODEX_RUNNER_NICE !== undefined ? { nice: e.CODEX_RUNNER_NICE } : {}),
          standby: e.CODEX_RUNNER_STANDBY,
        };

  const base: BaseAppConfig = {
    github: {
      ...(e.GHE_HOST ? { host: e.GHE_HOST } : {}),
      protocol: e.GHE_PROTOCOL,
      apiUrl: e.GHE_HOST ? `${e.GHE_PROTOCOL}://${e.GHE_HOST}/api/v3` : 'https://api.github.com',
    },
    githubThrottle: e.CODEX_GITHUB_THROTTLE,
    port: e.PORT,
    ...(e.HOST ? { host: e.HOST } : {}),
    logLevel: e.LOG_LEVEL,
    openai: { apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL },
    publicUrl: e.CODEX_PUBLIC_URL ?? `http://localhost:${e.PORT}`,
    dataDir: e.CODEX_DATA_DIR,
    concurrency: e.CODEX_CONCURRENCY,
    mention: e.CODEX_MENTION,
    model: e.CODEX_MODEL,
    ...(e.CODEX_REASONING_EFFORT ? { reasoningEffort: e.CODEX_REASONING_EFFORT } : {}),
    allowedBots: e.CODEX_ALLOWED_BOTS,
    taskTimeoutMs: e.CODEX_TASK_TIMEOUT_MINUTES * 60_000,
    maxTokens: e.CODEX_MAX_TOKENS,
    ...(e.CODEX_TOKEN_PRICES ? { tokenPrices: e.CODEX_TOKEN_PRICES } : {}),
    modelRetry: { retries: e.CODEX_MODEL_RETRIES, baseMs: e.CODEX_MODEL_RETRY_BASE_MS },
    runner,
    ...(e.CODEX_ENV_CACHE_HOURS > 0
      ? {
          environments: {
            maxAgeMs: Math.round(e.CODEX_ENV_CACHE_HOURS * 3_600_000),
            maxArchiveBytes: Math.floor(e.CODEX_ENV_MAX_MB * 1024 * 1024),
            maxTotalBytes: Math.floor(e.CODEX_ENV_CACHE_MAX_MB * 1024 * 1024),
            unpackedCopies: e.CODEX_ENV_UNPACKED_COPIES,
          },
        }
      : {}),
    ...(e.CODEX_AGENT_PROXY_PORT !== undefined
      ? {
          agentProxy: {
            port: e.CODEX_AGENT_PROXY_PORT,
            host: e.CODEX_AGENT_PROXY_HOST ?? (runner.backend === 'local' ? '127.0.0.1' : '0.0.0.0'),
            ...(e.CODEX_AGENT_PROXY_URL ? { url: e.CODEX_AGENT_PROXY_URL } : {}),
          },
        }
      : {}),
  };

  if (setupMode) {
    return {
      ...base,
      setupMode: true,
      ...(e.APP_ID ? { appId: e.APP_ID } : {}),
      ...(privateKey ? { privateKey } : {}),
      ...(e.WEBHOOK_SECRET ? { webhookSecret: e.WEBHOOK_SECRET } : {}),
    };
  }
  return { ...base, setupMode: false, appId: e.APP_ID!, privateKey: privateKey!, webhookSecret: e.WEBHOOK_SECRET! };
}
