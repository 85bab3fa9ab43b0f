/**
 * An error that retrying cannot fix: a refused host key, rejected credentials, a variable that is not set.
 * Executors and helpers throw it; the activity layer turns it into a non-retryable failure of that type,
 * so the task fails at once with the cause instead of after every retry.
 */
export class PermanentError extends Error {
  /** The failure type shown in Temporal (`SshHostKeyError`, `MissingEnvVar`, …). */
  readonly type: string = this.constructor.name;
}
