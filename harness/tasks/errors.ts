/**
 * Errors a task throws for input that no retry can fix: a bad `config.params.extra`, a missing or malformed
 * dataset. The engine reports them as configuration errors (exit 2, non-retryable), not as request failures.
 */

/** Invalid task parameters (`config.params.extra`): the message names the key path. */
export class TaskConfigError extends Error {
  override name = 'TaskConfigError';
}

/** A dataset file that is missing, unreadable or malformed: the message names the file (and line or row). */
export class DatasetError extends Error {
  override name = 'DatasetError';
}
