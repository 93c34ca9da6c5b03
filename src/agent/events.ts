/** Progress event output: JSON lines, stamped with the time. */
import type { Writable } from 'node:stream';
import type { ProgressEvent, ProgressEventInput } from '../contract.ts';

/** Adds the `at` timestamp (ISO-8601) to an event. */
export function stamp(event: ProgressEventInput): ProgressEvent {
  return { ...event, at: new Date().toISOString() } as ProgressEvent;
}

/**
 * Returns an emitter that writes each event as one JSON line to `out` and passes it to the extra
 * listeners (e.g. an HTTP reporter). Listener errors are swallowed: progress is best effort, the
 * result is not.
 */
export function jsonLinesEmitter(
  out: Writable,
  ...listeners: Array<(event: ProgressEvent) => void>
): (event: ProgressEventInput) => ProgressEvent {
  return (input) => {
    const event = stamp(input);
    out.write(`${JSON.stringify(event)}\n`);
    for (const listener of listeners) {
      try {
        listener(event);
      } catch {
        // best effort
      }
    }
    return event;
  };
}
