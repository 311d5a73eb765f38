// Runs examples/ledger as users run it (`node --import pgsight/register examples/ledger/main.ts`, ECS JSON on
// stdout) in its own schema, and talks to it over HTTP.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createTestSchema, type TestSchema } from '../../src/testing/index.js';
import { parseRecords, type RunResult, root, runNode } from './run-node.js';
import { dropSecondSchema, secondDatabaseUrl } from './second-database.js';

export interface RunningLedger {
  url: string;
  schema: TestSchema;
  child: ChildProcess;
  /** What the process wrote so far, records parsed. */
  records(): Record<string, unknown>[];
  /** Send a signal and wait for the process to end. */
  stop(signal?: NodeJS.Signals): Promise<RunResult>;
  /** The process's end, whenever it comes. */
  exited: Promise<RunResult>;
}

export interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

export async function call(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(url + path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

export async function startLedger(name: string, env: Record<string, string> = {}): Promise<RunningLedger> {
  const schema = await createTestSchema({ name });
  // Ledger B (inter-ledger transfers) in the tests' second database, in a schema of the same name.
  const urlB = await secondDatabaseUrl();
  let stdout = '';
  let child: ChildProcess | undefined;
  let listening: (url: string) => void = () => {};
  const ready = new Promise<string>((resolve) => {
    listening = resolve;
  });
  const exited = runNode(join(root, 'examples', 'ledger', 'main.ts'), {
    timeoutMs: 120_000,
    env: {
      PORT: '0',
      LEDGER_SCHEMA: schema.schema,
      LEDGER_SECOND_DATABASE_URL: urlB,
      NODE_ENV: 'production',
      OTEL_SERVICE_NAME: 'ledger',
      ...env,
    },
    onLine: (line, process) => {
      child = process;
      stdout += `${line}\n`;
      const url = /ledger listening on (http:\/\/[\d.:]+)/.exec(line)?.[1];
      if (url) listening(url);
    },
  });
  const url = await Promise.race([
    ready,
    exited.then((run) => {
      throw new Error(`the ledger exited before listening (${run.code}): ${run.stderr}`);
    }),
  ]);
  return {
    url,
    schema,
    child: child as ChildProcess,
    records: () => parseRecords(stdout),
    exited,
    async stop(signal = 'SIGTERM') {
      child?.kill(signal);
      const run = await exited;
      await schema.drop();
      await dropSecondSchema(schema.schema);
      return run;
    },
  };
}
