/**
 * The one error type of the config layer. The CLI prints `error: <message>` and exits with `exitCode`
 * (2: bad input, nothing was started), so messages must stand alone: they name the offending key path
 * (or YAML file:line:col) and never rely on a stack trace. One error can carry every problem of a config
 * (`problems`), so a user fixes them all in one go instead of one per run.
 */
export class ConfigError extends Error {
  readonly exitCode = 2;
  /** Each problem found, in the order found; a single-problem error lists itself. */
  readonly problems: readonly ConfigError[];

  constructor(
    message: string,
    /** Dotted key path of the offending value (`evaluation.tasks[1].name`), when there is one. */
    readonly keyPath?: string,
    problems?: readonly ConfigError[],
  ) {
    super(message);
    this.name = 'ConfigError';
    this.problems = problems ?? [this];
  }

  /** One error for several problems: one line each under `invalid config:`; the first one's key path. */
  static combine(errors: readonly ConfigError[]): ConfigError {
    // The same problem found twice (a global key seen by each task) is listed once.
    const problems = [...new Map(errors.flatMap((e) => e.problems).map((p) => [p.message, p])).values()];
    const [first] = problems;
    if (first === undefined) throw new Error('ConfigError.combine needs at least one problem');
    if (problems.length === 1) return first;
    return new ConfigError(`invalid config:\n${problems.map((p) => `  ${p.message}`).join('\n')}`, first.keyPath, problems);
  }
}

/** Collects the ConfigErrors of independent checks so that all of them are reported together. */
export class ConfigProblems {
  private readonly found: ConfigError[] = [];

  add(error: ConfigError): void {
    this.found.push(error);
  }

  /** Runs `check`; a ConfigError it throws is recorded (and undefined returned), anything else propagates. */
  check<T>(check: () => T): T | undefined {
    try {
      return check();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.add(err);
      return undefined;
    }
  }

  get any(): boolean {
    return this.found.length > 0;
  }

  /** Whether a problem at `keyPath` or above it was reported (later checks leave such values out). */
  covers(keyPath: string): boolean {
    return this.found.some((e) =>
      e.problems.some(({ keyPath: p }) => p !== undefined && (keyPath === p || keyPath.startsWith(`${p}.`) || keyPath.startsWith(`${p}[`))),
    );
  }

  /** All problems so far as one error. */
  toError(): ConfigError {
    return ConfigError.combine(this.found);
  }

  throwIfAny(): void {
    if (this.any) throw this.toError();
  }
}
