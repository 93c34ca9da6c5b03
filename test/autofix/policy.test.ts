import { describe, expect, test } from '@jest/globals';
import { decideAutofix, matchesCheckPattern, selectChecks } from '../../src/autofix/policy.ts';
import type { AutofixEvent, AutofixState } from '../../src/autofix/policy.ts';

const H0 = 'a'.repeat(40);
const H1 = 'b'.repeat(40);
const on = { enabled: true, max_attempts: 2 };
const event = (over: Partial<AutofixEvent> = {}): AutofixEvent => ({
  repo: 'octo/app',
  pullNumber: 7,
  pullOpen: true,
  fork: false,
  pullHeadSha: H0,
  eventHeadSha: H0,
  failingChecks: ['test'],
  fromOwnApp: false,
  headPushedByApp: false,
  ...over,
});
const fresh: AutofixState = { streak: 0, streakHead: null, stopped: false, capNoticed: false, running: null, attempts: [] };

describe('check patterns', () => {
  test('plain names match exactly (any case) and their matrix variants; globs use * and ?', () => {
    expect(matchesCheckPattern('test', 'test')).toBe(true);
    expect(matchesCheckPattern('Test', 'test')).toBe(true);
    expect(matchesCheckPattern('test (ubuntu-latest, 20)', 'test')).toBe(true);
    expect(matchesCheckPattern('tests', 'test')).toBe(false);
    expect(matchesCheckPattern('lint-js', 'lint*')).toBe(true);
    expect(matchesCheckPattern('CI / lint', '*lint')).toBe(true);
    expect(matchesCheckPattern('lint (x)', 'lint')).toBe(true);
    expect(matchesCheckPattern('lintx', 'lint?')).toBe(true);
    expect(matchesCheckPattern('lint.x', 'lint?x')).toBe(true);
    expect(matchesCheckPattern('lint..x', 'lint?x')).toBe(false);
    expect(matchesCheckPattern('a.b', 'a.b')).toBe(true);
    expect(matchesCheckPattern('axb', 'a.b')).toBe(false);
    expect(matchesCheckPattern('build [x]', 'build [x]')).toBe(true);
  });

  test('selectChecks keeps order, removes duplicates, and selects all without patterns', () => {
    expect(selectChecks(['lint', 'test', 'lint', 'e2e'], undefined)).toEqual(['lint', 'test', 'e2e']);
    expect(selectChecks(['lint', 'test (20)', 'e2e'], ['test', 'lint'])).toEqual(['lint', 'test (20)']);
  });
});

describe('decideAutofix', () => {
  test('gates: disabled, own checks, forks, closed, stale heads, nothing failing or selected', () => {
    expect(decideAutofix(event(), { enabled: false, max_attempts: 2 }, fresh)).toEqual({ action: 'skip', reason: 'disabled' });
    expect(decideAutofix(event({ fromOwnApp: true }), on, fresh)).toEqual({ action: 'skip', reason: 'own_check' });
    expect(decideAutofix(event({ fork: true }), on, fresh)).toEqual({ action: 'skip', reason: 'fork' });
    expect(decideAutofix(event({ pullOpen: false }), on, fresh)).toEqual({ action: 'skip', reason: 'closed' });
    expect(decideAutofix(event({ pullHeadSha: H1 }), on, fresh)).toEqual({ action: 'skip', reason: 'stale_head' });
    expect(decideAutofix(event({ failingChecks: [] }), on, fresh)).toEqual({ action: 'skip', reason: 'no_failing_checks' });
    expect(decideAutofix(event(), { ...on, checks: ['lint'] }, fresh)).toEqual({ action: 'skip', reason: 'no_matching_checks' });
  });

  test('a first failure on a person\'s head starts a streak and runs attempt 1', () => {
    expect(decideAutofix(event({ failingChecks: ['test', 'lint'] }), on, fresh)).toEqual({
      action: 'run',
      checks: ['test', 'lint'],
      attempt: 1,
      streak: { number: 1, head: H0, isNew: true },
    });
  });

  test('a running fix makes the failure wait', () => {
    expect(decideAutofix(event(), on, { ...fresh, running: { attemptId: 'x', headSha: H0 } })).toEqual({ action: 'wait', runningAttemptId: 'x' });
  });

  test('the same check on the same head is never attempted twice', () => {
    const state: AutofixState = { ...fresh, streak: 1, streakHead: H0, attempts: [{ check: 'test', headSha: H0, streak: 1 }] };
    expect(decideAutofix(event(), on, state)).toMatchObject({ action: 'skip', reason: 'already_attempted' });
    expect(decideAutofix(event({ failingChecks: ['test', 'lint'] }), on, state)).toMatchObject({ action: 'run', checks: ['lint'], attempt: 1 });
  });

  test('failing again on the App\'s commit counts; at the cap: stop, comment once', () => {
    const one: AutofixState = { ...fresh, streak: 1, streakHead: H0, attempts: [{ check: 'test', headSha: H0, streak: 1 }] };
    const second = decideAutofix(event({ pullHeadSha: H1, eventHeadSha: H1, headPushedByApp: true }), on, one);
    expect(second).toEqual({ action: 'run', checks: ['test'], attempt: 2, streak: { number: 1, head: H0, isNew: false } });
    const H2 = 'c'.repeat(40);
    const two: AutofixState = { ...one, attempts: [...one.attempts, { check: 'test', headSha: H1, streak: 1 }] };
    const capped = decideAutofix(event({ pullHeadSha: H2, eventHeadSha: H2, headPushedByApp: true }), on, two);
    expect(capped).toEqual({ action: 'cap_reached', checks: ['test'], maxAttempts: 2, comment: true, streak: { number: 1, head: H0, isNew: false } });
    expect(decideAutofix(event({ pullHeadSha: H2, eventHeadSha: H2, headPushedByApp: true }), on, { ...two, capNoticed: true })).toMatchObject({
      action: 'cap_reached',
      comment: false,
    });
    expect(decideAutofix(event({ pullHeadSha: H2, eventHeadSha: H2, headPushedByApp: true, failingChecks: ['lint'] }), on, { ...two, stopped: true, capNoticed: true })).toMatchObject({
      action: 'skip',
      reason: 'stopped',
    });
  });

  test('a person\'s push starts a new streak: counts and the stop are reset', () => {
    const H3 = 'd'.repeat(40);
    const stopped: AutofixState = {
      ...fresh,
      streak: 1,
      streakHead: H0,
      stopped: true,
      capNoticed: true,
      attempts: [
        { check: 'test', headSha: H0, streak: 1 },
        { check: 'test', headSha: H1, streak: 1 },
      ],
    };
    expect(decideAutofix(event({ pullHeadSha: H3, eventHeadSha: H3 }), on, stopped)).toEqual({
      action: 'run',
      checks: ['test'],
      attempt: 1,
      streak: { number: 2, head: H3, isNew: true },
    });
    // …but not when that head is the App's.
    expect(decideAutofix(event({ pullHeadSha: H3, eventHeadSha: H3, headPushedByApp: true }), on, stopped)).toMatchObject({ action: 'skip', reason: 'stopped' });
  });
});
