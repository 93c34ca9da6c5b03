/** Cancellation of a command-line run by SIGINT or SIGTERM. */

/**
 * Turns the first SIGINT or SIGTERM into an abort (the task stops and still returns its partial
 * work); a second one exits at once with 130. Call `dispose` when the run ends.
 */
export function abortOnSignals(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}
