import { describe, expect, test } from '@jest/globals';
import { ZodError } from 'zod';
import { buildTaskSpec, type TaskSpecSources } from '../../src/tasks/spec.ts';

const SHA = 'a'.repeat(40);

function sources(overrides: Partial<TaskSpecSources> = {}): TaskSpecSources {
  return {
    taskId: 'task_1',
    request: {
      kind: 'task',
      owner: 'acme',
      repo: 'calc',
      instruction: 'fix add',
      context: [{ kind: 'issue', author: 'alice', body: 'add is broken' }],
      requester: { login: 'maintainer', id: 7 },
      settings: {
        model: 'gpt-5.1-codex',
        autoInstall: true,
        timeoutMs: 60_000,
        maxTokens: 1000,
        allowWorkflowChanges: false,
        draftPullRequests: false,
      },
    },
    repository: { cloneUrl: 'http://127.0.0.1:1/acme/calc.git', baseRef: 'main', baseSha: SHA },
    cloneToken: 'ghs_clone',
    taskToken: 'cct_task',
    gatewayUrl: 'http://127.0.0.1:3000/v1',
    ...overrides,
  };
}

describe('buildTaskSpec', () => {
  test('carries the dispatched repository and base, the credentials, the limits and the model', () => {
    const spec = buildTaskSpec(sources());
    expect(spec.id).toBe('task_1');
    expect(spec.repository).toEqual({ cloneUrl: 'http://127.0.0.1:1/acme/calc.git', fullName: 'acme/calc', token: 'ghs_clone', baseRef: 'main', baseSha: SHA });
    expect(spec.model).toMatchObject({ baseUrl: 'http://127.0.0.1:3000/v1', apiKey: 'cct_task', name: 'gpt-5.1-codex' });
    expect(spec.model.reasoningEffort).toBeUndefined();
    expect(spec.limits).toMatchObject({ wallTimeMs: 60_000, maxTokens: 1000 });
    expect(spec.setup).toEqual({ autoInstall: true });
    expect(spec.requester).toBe('maintainer');
    expect(spec.instruction).toBe('fix add');
    expect(spec.context).toHaveLength(1);
  });

  test('optional settings appear only when set', () => {
    const base = sources();
    const spec = buildTaskSpec({
      ...base,
      request: { ...base.request, settings: { ...base.request.settings, reasoningEffort: 'high', maxTurns: 3, setupScript: 'npm ci', autoInstall: false } },
      modelRetry: { retries: 1, baseMs: 10 },
    });
    expect(spec.model).toMatchObject({ reasoningEffort: 'high', maxRetries: 1, retryBaseMs: 10 });
    expect(spec.limits.maxTurns).toBe(3);
    expect(spec.setup).toEqual({ script: 'npm ci', autoInstall: false });
  });

  test('pull request work: the head, its branch and ref, the number of commits; no agentsDocs unless given', () => {
    const head = 'b'.repeat(40);
    const same = buildTaskSpec(sources({ pullRequest: { number: 4, headRef: 'feature', headSha: head, fork: false, commits: 3 } }));
    expect(same.repository).toMatchObject({ baseRef: 'main', baseSha: SHA, headRef: 'feature', headSha: head, fetchRef: 'refs/heads/feature', prCommits: 3 });
    expect(same.agentsDocs).toBeUndefined();
    const fork = buildTaskSpec(
      sources({ pullRequest: { number: 4, headRef: 'main', headSha: head, fork: true }, agentsDocs: [{ path: 'AGENTS.md', content: 'base rules' }] }),
    );
    expect(fork.repository).toMatchObject({ headRef: 'main', headSha: head, fetchRef: 'refs/pull/4/head' });
    expect(fork.repository.prCommits).toBeUndefined();
    expect(fork.agentsDocs).toEqual([{ path: 'AGENTS.md', content: 'base rules' }]);
  });

  test('automatic work has no requester', () => {
    const base = sources();
    const { requester: _requester, ...request } = base.request;
    expect(buildTaskSpec({ ...base, request }).requester).toBeUndefined();
  });

  test('an invalid base SHA is refused', () => {
    expect(() => buildTaskSpec(sources({ repository: { cloneUrl: 'http://127.0.0.1:1/acme/calc.git', baseRef: 'main', baseSha: 'main' } }))).toThrow(ZodError);
  });
});
