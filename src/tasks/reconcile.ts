/**
 * Start-up reconciliation: what happens to the tasks a previous process of the app left unfinished.
 * Queued tasks go back in the queue; tasks left running are re-attached to their runner when the
 * backend can (ECS), otherwise they fail with a reply saying so; tasks left publishing are published
 * again from their stored result (publishing resumes from its stored checkpoints). Final replies
 * still in the outbox are delivered by the thread reporter, not here.
 */
import type { Logger } from 'pino';
import type { TaskResult } from '../contract.ts';
import type { TaskRecord } from './types.ts';

/** What to do with one unfinished task. */
export type ReconcileAction =
  | { type: 'requeue'; task: TaskRecord }
  | { type: 'resume'; task: TaskRecord; externalId: string }
  | { type: 'republish'; task: TaskRecord; result: TaskResult }
  | { type: 'fail'; task: TaskRecord; failure: { phase: string; reason: string } };

/** The reason given when a running task's runner could not be recovered. */
export const RESTART_REASON = 'the app restarted while the task was running, and its runner could not be recovered';

/**
 * Decides what to do with each unfinished task (pure).
 * @param backend the current backend's name and whether it can re-attach to runners.
 */
export function planReconciliation(tasks: readonly TaskRecord[], backend: { name: string; canResume: boolean }): ReconcileAction[] {
  return tasks.map((task): ReconcileAction => {
    switch (task.state) {
      case 'queued':
        return { type: 'requeue', task };
      case 'publishing':
        return task.result
          ? { type: 'republish', task, result: task.result }
          : { type: 'fail', task, failure: { phase: 'publishing', reason: 'the app restarted while publishing, and the result was not kept' } };
      default:
        return task.externalId && backend.canResume && task.backend === backend.name
          ? { type: 'resume', task, externalId: task.externalId }
          : { type: 'fail', task, failure: { phase: task.phase ?? 'starting', reason: RESTART_REASON } };
    }
  });
}

/** How {@link reconcileTasks} carries out its plan (the task service). */
export interface ReconcileHost {
  log: Logger;
  /** Puts a queued task back in the queue. */
  requeue(task: TaskRecord): Promise<void>;
  /** Re-attaches to the task's runner; false when the runner is gone. */
  resume(task: TaskRecord, externalId: string): Promise<boolean>;
  /** Publishes a stored result again. */
  republish(task: TaskRecord, result: TaskResult): Promise<void>;
  /** Ends the task as failed. */
  fail(task: TaskRecord, failure: { phase: string; reason: string }): Promise<void>;
}

/** Carries out {@link planReconciliation} for `tasks`, one task at a time; a failure is logged and the next task goes on. */
export async function reconcileTasks(
  tasks: readonly TaskRecord[],
  backend: { name: string; canResume: boolean },
  host: ReconcileHost,
): Promise<void> {
  for (const action of planReconciliation(tasks, backend)) {
    try {
      switch (action.type) {
        case 'requeue':
          await host.requeue(action.task);
          break;
        case 'republish':
          await host.republish(action.task, action.result);
          break;
        case 'resume':
          if (!(await host.resume(action.task, action.externalId))) {
            await host.fail(action.task, { phase: action.task.phase ?? 'starting', reason: RESTART_REASON });
          }
          break;
        case 'fail':
          await host.fail(action.task, action.failure);
          break;
      }
    } catch (error) {
      host.log.error({ taskId: action.task.id, err: error instanceof Error ? error.message : String(error) }, 'could not reconcile task');
    }
  }
}
