// Routes pgsight's own records (transaction retries, ends, watchdog) into an array for assertions.
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/env.js';
import { createEcsLogger } from '../../src/ecs/ecs-logger.js';
import { setPgsightLogger } from '../../src/ecs/pgsight-logger.js';

export function captureRecords(): Record<string, unknown>[] {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) records.push(JSON.parse(line));
      done();
    },
  });
  setPgsightLogger(createEcsLogger(loadConfig({ env: {}, overrides: { logLevel: 'debug' } }), sink));
  return records;
}

export const byAction = (records: Record<string, unknown>[], action: string) =>
  records.filter((r) => (r.event as { action?: string } | undefined)?.action === action);
