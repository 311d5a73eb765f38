/**
 * Development output: the (already redacted) ECS documents as readable lines through pino-pretty, on stdout.
 * Colour when stdout is a terminal, or when `colorize` says so.
 *
 * What a reader looks for first, on one line:
 *   pgsight's own records   level, time, message, then duration, fingerprint, code location
 *   requests                METHOD path status duration (request id); the rest with `details`
 *   errors                  the record's line, then the stack trace on its own lines
 *   the app's other records as pino-pretty shows them, with a field the app logged under an ECS name shown
 *                           as it was logged (not moved under `pino.*`, as the stored document has it)
 */
import { isatty } from 'node:tty';
import { prettyFactory } from 'pino-pretty';
import type { Output } from './output.js';
import { createStreamOutput } from './stream.js';

export interface PrettyOutputOptions {
  type: 'pretty';
  /** @default whether stdout is a terminal */
  colorize?: boolean;
  /** Show a request record's every field (trace, headers, client) instead of its one line. @default false */
  details?: boolean;
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const at = (doc: Json, path: string): unknown =>
  path.split('.').reduce<unknown>((v, part) => (isObject(v) ? v[part] : undefined), doc);

/** Fields of pgsight's own records worth a glance, as `name` → path in the document. */
const PGSIGHT_FIELDS: [string, string][] = [
  ['fingerprint', 'db.query.fingerprint'],
  ['transaction', 'db.transaction.name'],
  ['attempt', 'db.transaction.attempt'],
  ['sqlstate', 'db.response.status_code'],
  ['request', 'http.request.id'],
];

const ms = (ns: unknown) => (typeof ns === 'number' ? `${(ns / 1e6).toFixed(1)} ms` : undefined);

/** One compact line's worth of a pgsight record or a request; undefined for anything else. */
function compact(doc: Json, details: boolean): Json | undefined {
  const base: Json = { '@timestamp': doc['@timestamp'], message: doc.message };
  if (at(doc, 'log.logger') === 'pgsight') {
    const duration = ms(at(doc, 'event.duration'));
    if (duration) base.duration = duration;
    for (const [name, path] of PGSIGHT_FIELDS) {
      const value = at(doc, path);
      if (value !== undefined) base[name] = value;
    }
    const file = at(doc, 'log.origin.file.name');
    if (file !== undefined) base.at = `${file}:${at(doc, 'log.origin.file.line')}`;
    return base;
  }
  const method = at(doc, 'http.request.method');
  const status = at(doc, 'http.response.status_code');
  if (!details && typeof method === 'string' && status !== undefined) {
    const path = at(doc, 'url.path') ?? at(doc, 'url.original') ?? '';
    const duration = ms(at(doc, 'event.duration'));
    const id = at(doc, 'http.request.id');
    base.message = `${method} ${path} ${status}${duration ? ` ${duration}` : ''}${id ? ` (${id})` : ''}${
      doc.message && doc.message !== 'request completed' ? ` ${doc.message}` : ''
    }`;
    return base;
  }
  return undefined;
}

export function createPrettyOutput(options: PrettyOutputOptions): Output {
  const stdout = createStreamOutput({ type: 'stdout' });
  const common = {
    colorize: options.colorize ?? isatty(1),
    messageKey: 'message',
    timestampKey: '@timestamp',
    translateTime: 'HH:MM:ss.l',
  };
  const lines = prettyFactory({ ...common, singleLine: true });
  const blocks = prettyFactory({ ...common, singleLine: false });
  return {
    name: 'pretty',
    stats: stdout.stats,
    write(id, json) {
      const doc = JSON.parse(json) as Json;
      const label = String(doc['log.level'] ?? 'info');
      const level = LEVELS[label] ?? 30; // custom labels keep the nearest standard colour
      const stack = at(doc, 'error.stack_trace');
      const short = compact(doc, options.details === true);
      let text: string;
      if (short) text = lines({ ...short, level });
      else {
        // What every line has in a development terminal is noise: left out of the readable form.
        for (const key of ['log.level', 'ecs.version', 'service', 'process', 'host']) delete doc[key];
        const event = doc.event as Json | undefined;
        if (event) {
          delete event.dataset;
          delete event.id;
          if (Object.keys(event).length === 0) delete doc.event;
        }
        // A field the app logged under an ECS name is shown as the app logged it.
        if (isObject(doc.pino)) {
          for (const [key, value] of Object.entries(doc.pino))
            if (!key.includes('.') && doc[key] === undefined) doc[key] = value;
          delete doc.pino;
        }
        if (isObject(doc.error) && typeof stack === 'string') {
          delete doc.error.stack_trace;
          if (Object.keys(doc.error).length === 0) delete doc.error;
        }
        text = blocks({ ...doc, level });
      }
      if (text.endsWith('\n')) text = text.slice(0, -1);
      // A stack trace reads as lines, as pino-pretty users expect, not as one escaped string.
      if (typeof stack === 'string') text += `\n${stack.replace(/^/gm, '    ')}`;
      stdout.write(id, text);
    },
    flush: (deadlineMs) => stdout.flush(deadlineMs),
    close: (deadlineMs) => stdout.close(deadlineMs),
  };
}
