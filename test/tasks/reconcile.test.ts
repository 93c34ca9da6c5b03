import { describe, expect, test } from '@jest/globals';
import type { TaskResult } from '../../src/contract.ts';
import { planReconciliation, RESTART_REASON } from '../../src/tasks/reconcile.ts';
import type { TaskRecord } from '../../src/tasks/types.ts';

function task(patch: Partial<TaskRecord>): TaskRecord {
  return { id: 't', triggerKey: 'k', deliveryId: 'd', state: 'queued', request: {} as TaskRecord['request'], logKey: 'l', createdAt: 1, ...patch };
}

describe('planReconciliation', () => {
  const result = { id: 't' } as TaskResult;
  test('queued → requeue; publishing → republish its result (or fail without one)', () => {
    expect(planReconciliation([task({ state: 'queued' })], { name: 'local', canResume: false })[0]!.type).toBe('requeue');
    expect(planReconciliation([task({ state: 'publishing', result })], { name: 'local', canResume: false })[0]).toMatchObject({ type: 'republish', result });
    expect(planReconciliation([task({ state: 'publishing' })], { name: 'local', canResume: false })[0]).toMatchObject({ type: 'fail', failure: { phase: 'publishing' } });
  });

  test('running → resume on a backend that can and started it, else fail naming the phase', () => {
    const running = task({ state: 'running', backend: 'ecs', externalId: 'arn:x', phase: 'agent' });
    expect(planReconciliation([running], { name: 'ecs', canResume: true })[0]).toMatchObject({ type: 'resume', externalId: 'arn:x' });
    expect(planReconciliation([running], { name: 'local', canResume: false })[0]).toMatchObject({ type: 'fail', failure: { phase: 'agent', reason: RESTART_REASON } });
    expect(planReconciliation([task({ state: 'running' })], { name: 'ecs', canResume: true })[0]).toMatchObject({ type: 'fail', failure: { phase: 'starting' } });
  });
});
