/**
 * pgsight's error catalogue: one base class with a stable `code`, and one table of codes.
 * The README's "Error codes" section mirrors this table; a test keeps the two in step.
 */

export const errorCodes = {
  PGSIGHT_ERR_CONFIG_INVALID: 'One or more configuration values are invalid.',
  PGSIGHT_ERR_ARGUMENT_INVALID: 'A library function was called with an invalid argument.',
} as const;

export type PgsightErrorCode = keyof typeof errorCodes;

export class PgsightError extends Error {
  override readonly name = 'PgsightError';
  readonly code: PgsightErrorCode;
  /** Extra, machine-readable detail (for example every invalid setting). */
  readonly details: readonly unknown[];

  constructor(code: PgsightErrorCode, message: string, options?: { cause?: unknown; details?: unknown[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = Object.freeze([...(options?.details ?? [])]);
  }
}
