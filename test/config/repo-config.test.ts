import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Context, type ProbotOctokit } from 'probot';
import { pino } from 'pino';
import YAML from 'yaml';
import {
  agentNetworkAllowlist,
  autofixSettings,
  DEFAULT_AUTOFIX,
  loadRepoConfig,
  parseRepoConfig,
  RepoConfig,
  RepoConfigError,
  type RepoConfigIssue,
} from '../../src/config/repo-config.ts';
import { GitHubStandIn, ProbotOctokitForTests } from '../support/github-stand-in.ts';

const DEFAULTS = {
  allow_workflow_changes: false,
  draft_pull_requests: false,
  auto_install: true,
  review: { auto: false, on_push: false, drafts: false, min_priority: 'P1', paths_ignore: [], authors_ignore: [] },
};
const REVIEW_DEFAULTS = DEFAULTS.review;

function issuesOf(raw: unknown): RepoConfigIssue[] {
  try {
    parseRepoConfig(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(RepoConfigError);
    return (error as RepoConfigError).issues;
  }
  throw new Error('expected parseRepoConfig to throw');
}

/** What Probot's config plugin does with a file's text (see @probot/octokit-plugin-config). */
function probotLikeConfig(text: string | null): (file: string) => Promise<unknown> {
  return async (file) => {
    expect(file).toBe('codex.yml');
    if (text === null) return null;
    let config: unknown;
    try {
      config = YAML.parse(text, { logLevel: 'error' }) || {};
    } catch (error) {
      throw new Error(
        '[@probot/octokit-plugin-config] Configuration could not be parsed from https://api.github.com/repos/o/r/contents/.github/codex.yml (invalid YAML)',
        { cause: error },
      );
    }
    if (typeof config === 'string') {
      throw new Error('[@probot/octokit-plugin-config] Configuration could not be parsed from … (YAML is not an object)');
    }
    return config;
  };
}

describe('parseRepoConfig', () => {
  test('no file, an empty file or an empty mapping give the defaults', () => {
    expect(parseRepoConfig(undefined)).toEqual(DEFAULTS);
    expect(parseRepoConfig(null)).toEqual(DEFAULTS);
    expect(parseRepoConfig({})).toEqual(DEFAULTS);
  });

  test('a full file is accepted as written', () => {
    const raw = YAML.parse(`
setup: |
  npm ci
  npm run build
model: gpt-5.1-codex
reasoning_effort: xhigh
limits:
  max_turns: 500
  timeout_minutes: 360
  max_tokens: 2000000
allow_workflow_changes: true
draft_pull_requests: true
auto_install: false
review:
  auto: true
  focus: security
`);
    expect(parseRepoConfig(raw)).toEqual({
      setup: 'npm ci\nnpm run build\n',
      model: 'gpt-5.1-codex',
      reasoning_effort: 'xhigh',
      limits: { max_turns: 500, timeout_minutes: 360, max_tokens: 2_000_000 },
      allow_workflow_changes: true,
      draft_pull_requests: true,
      auto_install: false,
      review: { ...REVIEW_DEFAULTS, auto: true, focus: 'security' },
    });
  });

  test('setup_timeout_minutes takes 1..120 minutes', () => {
    expect(parseRepoConfig({ setup_timeout_minutes: 1 }).setup_timeout_minutes).toBe(1);
    expect(parseRepoConfig({ setup_timeout_minutes: 120 }).setup_timeout_minutes).toBe(120);
    expect(parseRepoConfig({}).setup_timeout_minutes).toBeUndefined();
    expect(() => parseRepoConfig({ setup_timeout_minutes: 0 })).toThrow(/setup_timeout_minutes/);
    expect(() => parseRepoConfig({ setup_timeout_minutes: 121 })).toThrow(/setup_timeout_minutes/);
  });

  test('limits accept their lower bounds and may be partial', () => {
    expect(parseRepoConfig({ limits: { max_turns: 1, timeout_minutes: 1, max_tokens: 1 } }).limits).toEqual({
      max_turns: 1,
      timeout_minutes: 1,
      max_tokens: 1,
    });
    expect(parseRepoConfig({ limits: { max_turns: 5 } }).limits).toEqual({ max_turns: 5 });
  });

  test.each(['minimal', 'low', 'medium', 'high', 'xhigh'])('reasoning_effort %s is accepted', (effort) => {
    expect(parseRepoConfig({ reasoning_effort: effort }).reasoning_effort).toBe(effort);
  });

  test('keys with empty values (YAML null) count as not set', () => {
    expect(parseRepoConfig(YAML.parse('model:\nsetup:\nlimits:\nreview:\n  focus:\n'))).toEqual(DEFAULTS);
  });

  test('every review key, as the README documents them', () => {
    const raw = YAML.parse(`
review:
  auto: true
  on_push: true
  drafts: true
  min_priority: P2
  paths_ignore: ["docs/**", "*.lock"]
  authors_ignore: ["dependabot[bot]"]
  focus: security and error handling
  model: gpt-5.1-codex-mini
  max_turns: 40
  timeout_minutes: 15
`);
    expect(parseRepoConfig(raw).review).toEqual({
      auto: true, on_push: true, drafts: true, min_priority: 'P2', paths_ignore: ['docs/**', '*.lock'], authors_ignore: ['dependabot[bot]'],
      focus: 'security and error handling', model: 'gpt-5.1-codex-mini', max_turns: 40, timeout_minutes: 15,
    });
  });

  test('review defaults auto to false when only a focus is given', () => {
    expect(parseRepoConfig({ review: { focus: 'perf' } }).review).toEqual({ ...REVIEW_DEFAULTS, focus: 'perf' });
  });

  test.each([
    [{ limits: { max_turns: 501 } }, 'limits.max_turns', 'must be at most 500'],
    [{ limits: { max_turns: 0 } }, 'limits.max_turns', 'must be at least 1'],
    [{ limits: { max_turns: 2.5 } }, 'limits.max_turns', 'must be a whole number, got a number'],
    [{ limits: { max_turns: '100' } }, 'limits.max_turns', 'must be a number, got a string'],
    [{ limits: { timeout_minutes: 361 } }, 'limits.timeout_minutes', 'must be at most 360'],
    [{ limits: { timeout_minutes: 0 } }, 'limits.timeout_minutes', 'must be at least 1'],
    [{ limits: { max_tokens: 0 } }, 'limits.max_tokens', 'must be at least 1'],
    [{ limits: { max_tokens: -5 } }, 'limits.max_tokens', 'must be at least 1'],
    [{ limits: 10 }, 'limits', 'must be a mapping of keys to values, got a number'],
    [{ reasoning_effort: 'extreme' }, 'reasoning_effort', 'must be one of minimal, low, medium, high, xhigh'],
    [{ model: 42 }, 'model', 'must be a string, got a number'],
    [{ model: '  ' }, 'model', 'must not be empty'],
    [{ setup: ['npm ci'] }, 'setup', 'must be a string, got a list'],
    [{ allow_workflow_changes: 'yes' }, 'allow_workflow_changes', 'must be true or false, got a string'],
    [{ draft_pull_requests: 1 }, 'draft_pull_requests', 'must be true or false, got a number'],
    [{ auto_install: 'false' }, 'auto_install', 'must be true or false, got a string'],
    [{ review: { auto: 'on' } }, 'review.auto', 'must be true or false, got a string'],
    [{ review: true }, 'review', 'must be a mapping of keys to values, got a boolean'],
    [{ review: { focus: 3 } }, 'review.focus', 'must be a string, got a number'],
    [{ review: { focus: ' ' } }, 'review.focus', 'must not be empty'],
    [{ review: { on_push: 'yes' } }, 'review.on_push', 'must be true or false, got a string'],
    [{ review: { drafts: 1 } }, 'review.drafts', 'must be true or false, got a number'],
    [{ review: { min_priority: 'P4' } }, 'review.min_priority', 'must be one of P0, P1, P2, P3'],
    [{ review: { min_priority: 1 } }, 'review.min_priority', 'must be one of P0, P1, P2, P3'],
    [{ review: { paths_ignore: 'docs/**' } }, 'review.paths_ignore', 'must be a list, got a string'],
    [{ review: { paths_ignore: ['docs/**', ''] } }, 'review.paths_ignore.1', 'entries must not be empty'],
    [{ review: { authors_ignore: [7] } }, 'review.authors_ignore.0', 'must be a string, got a number'],
    [{ review: { model: '' } }, 'review.model', 'must not be empty'],
    [{ review: { max_turns: 0 } }, 'review.max_turns', 'must be at least 1'],
    [{ review: { timeout_minutes: 361 } }, 'review.timeout_minutes', 'must be at most 360'],
    [['model'], '(root)', 'must be a mapping of keys to values, got a list'],
    [42, '(root)', 'must be a mapping of keys to values, got a number'],
  ])('%j is rejected at %s', (raw, key, message) => {
    expect(issuesOf(raw)).toEqual([{ key, message }]);
  });

  test('unknown keys are errors at any level, listing the allowed keys', () => {
    const issues = issuesOf({ modle: 'x', limits: { max_turn: 5 }, review: { automatic: true } });
    expect(issues).toHaveLength(3);
    expect(issues).toEqual(expect.arrayContaining([
      {
        key: 'modle',
        message:
          'unknown key (allowed here: setup, setup_timeout_minutes, model, reasoning_effort, limits, allow_workflow_changes, draft_pull_requests, auto_install, review, autofix, agent_network)',
      },
      { key: 'limits.max_turn', message: 'unknown key (allowed here: max_turns, timeout_minutes, max_tokens)' },
      { key: 'review.automatic', message: 'unknown key (allowed here: auto, on_push, drafts, min_priority, paths_ignore, authors_ignore, focus, model, max_turns, timeout_minutes)' },
    ]));
  });

  test('every bad key is reported, and the message is a markdown list naming them', () => {
    let caught: unknown;
    try {
      parseRepoConfig({ limits: { max_turns: 1000, timeout_minutes: 'x' }, draft_pull_requests: 'no', 'we`ird\nkey': 1 });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RepoConfigError);
    const error = caught as RepoConfigError;
    expect(error.name).toBe('RepoConfigError');
    expect(error.issues.map((i) => i.key).sort()).toEqual(
      ['draft_pull_requests', 'limits.max_turns', 'limits.timeout_minutes', 'weirdkey'].sort(),
    );
    const lines = error.message.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines).toContain('- `limits.max_turns`: must be at most 500');
    expect(lines).toContain('- `limits.timeout_minutes`: must be a number, got a string');
    for (const line of lines) expect(line).toMatch(/^- `[^`\n]+`: .+$/);
  });

  test('the exported schema is the one used (strict)', () => {
    expect(RepoConfig.safeParse({ model: 'm' }).success).toBe(true);
    expect(RepoConfig.safeParse({ nope: 1 }).success).toBe(false);
  });
});

describe('loadRepoConfig', () => {
  test('reads codex.yml through context.config and validates it', async () => {
    const config = await loadRepoConfig({ config: probotLikeConfig('model: o4\nlimits:\n  max_turns: 20\n') });
    expect(config).toEqual({ ...DEFAULTS, model: 'o4', limits: { max_turns: 20 } });
  });

  test('a missing file (null) or an empty file gives the defaults', async () => {
    expect(await loadRepoConfig({ config: probotLikeConfig(null) })).toEqual(DEFAULTS);
    expect(await loadRepoConfig({ config: probotLikeConfig('') })).toEqual(DEFAULTS);
    expect(await loadRepoConfig({ config: probotLikeConfig('# only a comment\n') })).toEqual(DEFAULTS);
  });

  test('invalid values are reported by key', async () => {
    const error = await loadRepoConfig({ config: probotLikeConfig('limits:\n  max_turns: 9000\n') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RepoConfigError);
    expect((error as RepoConfigError).issues).toEqual([{ key: 'limits.max_turns', message: 'must be at most 500' }]);
  });

  test('a YAML syntax error (parsed by the yaml package, as Probot does) becomes a (file) issue with the position', async () => {
    const broken = 'model: gpt-5\nlimits:\n  max_turns: [1, 2\nsetup: x\n';
    const error = await loadRepoConfig({ config: probotLikeConfig(broken) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RepoConfigError);
    const { issues, message, cause } = error as RepoConfigError;
    expect(issues).toHaveLength(1);
    expect(issues[0]!.key).toBe('(file)');
    expect(issues[0]!.message).toMatch(/^invalid YAML: .+ at line \d+, column \d+$/);
    expect(message).toBe(`- \`(file)\`: ${issues[0]!.message}`);
    expect(cause).toBeInstanceOf(Error);
  });

  test('a YAML document that is a plain string is a (file) issue', async () => {
    const error = await loadRepoConfig({ config: probotLikeConfig('just some text\n') }).catch((e: unknown) => e);
    expect((error as RepoConfigError).issues).toEqual([{ key: '(file)', message: 'must be a YAML mapping of keys to values' }]);
  });

  test('errors that are not about the file (e.g. GitHub unreachable) are rethrown unchanged', async () => {
    const outage = Object.assign(new Error('Server Error'), { status: 502 });
    const error = await loadRepoConfig({
      config: async () => {
        throw outage;
      },
    }).catch((e: unknown) => e);
    expect(error).toBe(outage);
  });
});

describe('loadRepoConfig with a real Probot Context against the GitHub stand-in', () => {
  let gh: GitHubStandIn;
  let octokit: ProbotOctokit;

  function contextFor(repo: string): Context {
    const [owner, name] = repo.split('/') as [string, string];
    const payload = { repository: { name, owner: { login: owner } } };
    // Only `payload.repository` matters to context.config; the rest of the webhook payload is unused.
    return new Context({ id: '1', name: 'issues', payload } as never, octokit, pino({ level: 'silent' }));
  }

  beforeAll(async () => {
    gh = await GitHubStandIn.start();
    await gh.addRepo('acme/good', { '.github/codex.yml': 'model: o4\nreview:\n  auto: true\n' });
    await gh.addRepo('acme/typo', { '.github/codex.yml': 'limits:\n  max_turns: 600\nmodle: x\n' });
    await gh.addRepo('acme/broken', { '.github/codex.yml': 'model: [unclosed\nsetup: x\n' });
    await gh.addRepo('acme/none', { 'README.md': '# none\n' });
    octokit = new ProbotOctokitForTests({ auth: { token: gh.createInstallationToken(1).token }, baseUrl: gh.apiUrl });
  });

  afterAll(async () => {
    await gh.close();
  });

  test('a valid file', async () => {
    expect(await loadRepoConfig(contextFor('acme/good'))).toEqual({ ...DEFAULTS, model: 'o4', review: { ...REVIEW_DEFAULTS, auto: true } });
  });

  test('no file', async () => {
    expect(await loadRepoConfig(contextFor('acme/none'))).toEqual(DEFAULTS);
  });

  test('bad keys', async () => {
    const error = await loadRepoConfig(contextFor('acme/typo')).catch((e: unknown) => e);
    expect((error as RepoConfigError).issues).toEqual([
      { key: 'limits.max_turns', message: 'must be at most 500' },
      { key: 'modle', message: expect.stringMatching(/^unknown key/) },
    ]);
  });

  test('broken YAML', async () => {
    const error = await loadRepoConfig(contextFor('acme/broken')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RepoConfigError);
    expect((error as RepoConfigError).issues[0]).toEqual({
      key: '(file)',
      message: expect.stringMatching(/^invalid YAML: .+ at line \d+, column \d+$/),
    });
  });

  test('a GitHub failure is not a config error', async () => {
    gh.failNext({ path: /\/contents\// }, { status: 500 });
    const error = await loadRepoConfig(contextFor('acme/good')).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(RepoConfigError);
    expect((error as { status?: number }).status).toBe(500);
  });
});

describe('autofix settings', () => {
  test('absent: disabled, 2 attempts, every check; the parsed defaults stay without the key', () => {
    expect(parseRepoConfig({}).autofix).toBeUndefined();
    expect(autofixSettings(parseRepoConfig({}))).toEqual(DEFAULT_AUTOFIX);
    expect(DEFAULT_AUTOFIX).toEqual({ enabled: false, max_attempts: 2 });
  });

  test('a full autofix block is accepted, and partial ones get their defaults', () => {
    const full = parseRepoConfig(YAML.parse('autofix:\n  enabled: true\n  max_attempts: 3\n  checks: [test, "lint*"]\n'));
    expect(autofixSettings(full)).toEqual({ enabled: true, max_attempts: 3, checks: ['test', 'lint*'] });
    expect(autofixSettings(parseRepoConfig({ autofix: { enabled: true } }))).toEqual({ enabled: true, max_attempts: 2 });
    expect(autofixSettings(parseRepoConfig({ autofix: {} }))).toEqual({ enabled: false, max_attempts: 2 });
    expect(autofixSettings(parseRepoConfig(YAML.parse('autofix:\n  enabled: true\n  checks:\n')))).toEqual({ enabled: true, max_attempts: 2 });
  });

  test('bad values are named by key', () => {
    expect(issuesOf({ autofix: { enabled: 'yes' } })).toEqual([{ key: 'autofix.enabled', message: 'must be true or false, got a string' }]);
    expect(issuesOf({ autofix: { max_attempts: 0 } })).toEqual([{ key: 'autofix.max_attempts', message: 'must be at least 1' }]);
    expect(issuesOf({ autofix: { max_attempts: 11 } })).toEqual([{ key: 'autofix.max_attempts', message: 'must be at most 10' }]);
    expect(issuesOf({ autofix: { max_attempts: 1.5 } })).toEqual([{ key: 'autofix.max_attempts', message: 'must be a whole number, got a number' }]);
    expect(issuesOf({ autofix: { checks: 'test' } })).toEqual([{ key: 'autofix.checks', message: 'must be a list, got a string' }]);
    expect(issuesOf({ autofix: { checks: [] } })).toEqual([
      { key: 'autofix.checks', message: 'must list at least one check name or glob (leave the key out for all checks)' },
    ]);
    expect(issuesOf({ autofix: { checks: ['test', ' '] } })).toEqual([{ key: 'autofix.checks.1', message: 'must not be empty' }]);
    expect(issuesOf({ autofix: true })).toEqual([{ key: 'autofix', message: 'must be a mapping of keys to values, got a boolean' }]);
    expect(issuesOf({ autofix: { enable: true } })).toEqual([{ key: 'autofix.enable', message: 'unknown key (allowed here: enabled, max_attempts, checks)' }]);
  });
});

describe('agent_network', () => {
  test('is off by default, with YAML off or false, and an allowlist of hosts and *. wildcards otherwise', () => {
    expect(agentNetworkAllowlist(parseRepoConfig({}))).toBeUndefined();
    expect(agentNetworkAllowlist(parseRepoConfig(YAML.parse('agent_network: off')))).toBeUndefined();
    expect(agentNetworkAllowlist(parseRepoConfig({ agent_network: false }))).toBeUndefined();
    const config = parseRepoConfig(YAML.parse('agent_network:\n  allow: ["PyPI.org.", "*.pythonhosted.org", pypi.org]\n'));
    expect(config.agent_network).toEqual({ allow: ['pypi.org', '*.pythonhosted.org', 'pypi.org'] });
    expect(agentNetworkAllowlist(config)).toEqual(['pypi.org', '*.pythonhosted.org']);
  });

  test('names each bad entry; a bare *, IP addresses and malformed names are refused', () => {
    expect(issuesOf({ agent_network: { allow: ['*', '10.0.0.1', 'ok.org', 'a_b.com', '*.org'] } })).toEqual([
      { key: 'agent_network.allow.0', message: '"*" must name hosts: a bare * would allow the whole internet' },
      { key: 'agent_network.allow.1', message: '"10.0.0.1" must be a host name, not an IP address' },
      { key: 'agent_network.allow.3', message: expect.stringMatching(/^"a_b\.com" must be a host name such as pypi\.org/) },
      { key: 'agent_network.allow.4', message: expect.stringMatching(/^"\*\.org" must be a host name/) },
    ]);
    expect(issuesOf({ agent_network: { allow: [] } })).toEqual([{ key: 'agent_network.allow', message: 'must list at least one host (or write agent_network: off)' }]);
    for (const bad of ['on', true, { allowed: ['pypi.org'] }]) {
      expect(issuesOf({ agent_network: bad })).toEqual([{ key: 'agent_network', message: 'must be off or a mapping with allow: [host names]' }]);
    }
  });
});
