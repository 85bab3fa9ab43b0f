/**
 * The one error type of the config layer. The CLI prints `error: <message>` and exits with `exitCode`
 * (2: bad input, nothing was started), so messages must stand alone: they name the offending key path
 * (or YAML file:line:col) and never rely on a stack trace.
 */
export class ConfigError extends Error {
  readonly exitCode = 2;

  constructor(
    message: string,
    /** Dotted key path of the offending value (`evaluation.tasks[1].name`), when there is one. */
    readonly keyPath?: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}
