// Runs a fixture the way users run their apps: a child `node` (the same Node as the test runner) with
// pgsight preloaded through --import or NODE_OPTIONS, from the package root so `pgsight/register` resolves.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Every stdout line that parses as a JSON object. */
  records: Record<string, unknown>[];
}

export interface RunOptions {
  /** Node's own arguments, before the script. @default ['--import', 'pgsight/register'] */
  args?: string[];
  /** The script's arguments. */
  scriptArgs?: string[];
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Working directory of the child. @default the package root */
  cwd?: string;
  /** Called with the child once it prints `line` on stdout. */
  onLine?: (line: string, child: import('node:child_process').ChildProcess) => void;
}

/** Environment variables a developer's shell might set that would change what a fixture does. */
const SCRUBBED = /^(OTEL_|PGSIGHT_|NODE_OPTIONS$)/;

/**
 * Node's own flags every child gets: on a Node that does not strip TypeScript types by default (22 before
 * 22.18), the flag that turns it on, so fixtures, the demo and the ledger (`.ts` files) run as on Node 24.
 * https://nodejs.org/api/typescript.html#type-stripping
 */
export const nodeFlags: readonly string[] = (process.features as { typescript?: unknown }).typescript
  ? []
  : ['--experimental-strip-types', '--disable-warning=ExperimentalWarning'];

export function runNode(script: string, options: RunOptions = {}): Promise<RunResult> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env))
    if (value !== undefined && !SCRUBBED.test(key)) env[key] = value;
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const child = spawn(
    process.execPath,
    [
      ...nodeFlags,
      ...(options.args ?? ['--import', 'pgsight/register']),
      script,
      ...(options.scriptArgs ?? []),
    ],
    {
      cwd: options.cwd ?? root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    pending += chunk;
    let nl = pending.indexOf('\n');
    while (nl !== -1) {
      options.onLine?.(pending.slice(0, nl), child);
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, records: parseRecords(stdout) });
    });
  });
}

export function parseRecords(text: string): Record<string, unknown>[] {
  const records: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      records.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a record
    }
  }
  return records;
}

/** Read a dotted ECS path from a record, nested or dotted-key form alike. */
export function field(record: Record<string, unknown> | undefined, path: string): unknown {
  if (record === undefined) return undefined;
  if (path in record) return record[path];
  let current: unknown = record;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}
