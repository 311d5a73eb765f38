/**
 * The one way pgsight checks options (transaction options, the transport's options, `pgsight setup`'s
 * arguments): every problem is collected first, then one PgsightError names them all, so a user fixes a
 * configuration in one round instead of one error at a time.
 */
import { PgsightError, type PgsightErrorCode } from '../errors.js';

export class Problems {
  readonly list: string[] = [];

  add(problem: string): void {
    this.list.push(problem);
  }

  /** `path` must be a whole number from `min` to `max` when given; false (and a problem) when it is not. */
  wholeNumber(path: string, value: unknown, min: number, max: number, unit = ''): boolean {
    if (
      value === undefined ||
      (Number.isInteger(value) && (value as number) >= min && (value as number) <= max)
    )
      return true;
    this.add(`${path} must be a whole number${unit} from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return false;
  }

  /** `path` must be one of `allowed` when given. */
  oneOf(path: string, value: unknown, allowed: readonly string[]): boolean {
    if (value === undefined || allowed.includes(value as string)) return true;
    this.add(
      `${path} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value)}`,
    );
    return false;
  }

  /** Keys of `object` that are not `known`, each named. */
  unknownKeys(object: object, known: ReadonlySet<string>, where = ''): void {
    for (const key of Object.keys(object))
      if (!known.has(key)) this.add(`unknown option "${where ? `${where}.` : ''}${key}"`);
  }

  /** Throw one PgsightError naming every problem (`details` lists them); nothing when there is none. */
  throwIfAny(code: PgsightErrorCode, what: string, hint = ''): void {
    if (this.list.length === 0) return;
    throw new PgsightError(code, `${what}: ${this.list.join('; ')}${hint}`, { details: [...this.list] });
  }
}
