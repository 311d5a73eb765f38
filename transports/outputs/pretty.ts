/**
 * Development output: the (already redacted) ECS documents as readable, colourised lines through pino-pretty,
 * on stdout. Colour when stdout is a terminal, or when `colorize` says so.
 */
import { isatty } from 'node:tty';
import { prettyFactory } from 'pino-pretty';
import type { Output } from './output.js';
import { createStreamOutput } from './stream.js';

export interface PrettyOutputOptions {
  type: 'pretty';
  /** @default whether stdout is a terminal */
  colorize?: boolean;
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

export function createPrettyOutput(options: PrettyOutputOptions): Output {
  const stdout = createStreamOutput({ type: 'stdout' });
  const pretty = prettyFactory({
    colorize: options.colorize ?? isatty(1),
    messageKey: 'message',
    timestampKey: '@timestamp',
    translateTime: 'HH:MM:ss.l',
    singleLine: false,
  });
  return {
    name: 'pretty',
    stats: stdout.stats,
    write(id, json) {
      const doc = JSON.parse(json) as Record<string, unknown>;
      const label = String(doc['log.level'] ?? 'info');
      // What every line has in a development terminal is noise: left out of the readable form.
      for (const key of ['log.level', 'ecs.version', 'service', 'process', 'host']) delete doc[key];
      const event = doc.event as Record<string, unknown> | undefined;
      if (event) {
        delete event.dataset;
        delete event.id;
        if (Object.keys(event).length === 0) delete doc.event;
      }
      // pino-pretty reads numeric levels; custom labels keep the nearest standard colour.
      const text = pretty({ ...doc, level: LEVELS[label] ?? 30 });
      stdout.write(id, text.endsWith('\n') ? text.slice(0, -1) : text);
    },
    flush: (deadlineMs) => stdout.flush(deadlineMs),
    close: (deadlineMs) => stdout.close(deadlineMs),
  };
}
