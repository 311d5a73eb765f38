/**
 * How each environment variable's text becomes a setting: one parser per kind of value, each saying what it
 * expects (the message a bad value gets names it).
 */
import type { LogLevel } from './env.js';

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

export type Parser<T> = { expected: string; parse: (raw: string) => T | undefined };

export const boolean: Parser<boolean> = {
  expected: 'true or false',
  parse: (raw) => {
    const word = raw.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    return undefined;
  },
};

export function wholeNumber(min: number, max: number): Parser<number> {
  return {
    expected: `a whole number from ${min} to ${max}`,
    parse: (raw) => {
      if (!/^\s*\d+\s*$/.test(raw)) return undefined;
      const n = Number(raw);
      return n >= min && n <= max ? n : undefined;
    },
  };
}

export const logLevel: Parser<LogLevel> = {
  expected: LOG_LEVELS.join(', '),
  parse: (raw) => LOG_LEVELS.find((level) => level === raw.trim().toLowerCase()),
};

export type TxOrigin = 'cached' | 'exact';
export const txOrigin: Parser<TxOrigin> = {
  expected: 'cached or exact',
  parse: (raw) => (['cached', 'exact'] as const).find((mode) => mode === raw.trim().toLowerCase()),
};

export const text: Parser<string> = {
  expected: 'a non-empty string',
  parse: (raw) => raw.trim() || undefined,
};

/** An http(s) URL Node can parse: `http://127.0.0.1:99999` (port out of range) or `http://[::1` is not one. */
/** A regular expression (JavaScript syntax, no delimiters), tested against normalized statement text. */
export const pattern: Parser<RegExp> = {
  expected: 'a regular expression (JavaScript syntax, without slashes)',
  parse: (raw) => {
    try {
      return new RegExp(raw);
    } catch {
      return undefined;
    }
  },
};

export const httpUrl: Parser<string> = {
  expected: 'an http(s) URL',
  parse: (raw) => {
    try {
      const url = new URL(raw.trim());
      return url.protocol === 'http:' || url.protocol === 'https:' ? raw.trim() : undefined;
    } catch {
      return undefined;
    }
  },
};
