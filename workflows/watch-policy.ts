/**
 * How long one watchHarness call may run before it returns progress to the workflow: short at first
 * (live progress in queries), then a tenth of the elapsed time, capped at an hour, so a 7-day job adds
 * only a few hundred events to its history.
 */
export function watchCheckpointSeconds(elapsedS: number): number {
  return Math.round(Math.min(3600, Math.max(15, elapsedS / 10)));
}
