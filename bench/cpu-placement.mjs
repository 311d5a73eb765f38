// Client and PostgreSQL on separate CPUs, for benchmarks that measure the client's CPU per query.
//
// In production the database runs on another host. On a small machine that runs both, the PostgreSQL
// backends are scheduled on the client's CPU between its socket reads and evict its caches, which inflates
// the cost of every instruction the client runs by a factor that depends on the scheduler, not on the code
// (bench/transaction.mjs shows it on its bare-wrapper row). Pinning the server's processes to some CPUs and
// the client to another (Linux `taskset`) takes that out. It needs permission to change the server's
// affinity (root, or the server's own user); `separateCpus` says why when it cannot, and the caller falls back
// to shared CPUs. The server's original affinity is restored on exit, SIGINT and SIGTERM.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';

const parentOf = (pid) => {
  // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces, so split after the last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
};
const isPostgres = (pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
const allowedCpus = (pid) =>
  /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
/** "0-2,5" -> [0, 1, 2, 5] */
const expand = (list) =>
  list.split(',').flatMap((part) => {
    const [from, to = from] = part.split('-').map(Number);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
const setAffinity = (pid, cpus) =>
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });

/**
 * Pin the PostgreSQL server behind `url` to all the CPUs this process may use but the last, and return the
 * `taskset` prefix that runs the client on the last one:
 * `{ prefix: ['taskset', '-c', 'N'], serverCpus, clientCpu, restore }`, or `{ reason }` when it cannot.
 */
export async function separateCpus(url) {
  if (process.platform !== 'linux') return { reason: 'CPU pinning needs Linux (taskset)' };
  // The CPUs this process may run on (a container's cpuset may not start at 0).
  const cpus = expand(allowedCpus('self') ?? '0');
  if (cpus.length < 2) return { reason: 'one CPU: nothing to separate' };
  const clientCpu = cpus.at(-1);
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
  } catch {
    return { reason: 'taskset (util-linux) is not installed' };
  }
  // The backend's parent is the postmaster; read it while the backend is alive. A server on another host
  // (or in another PID namespace) reports a pid that is not a postgres process here, or none at all: never
  // pin whatever else holds that number.
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let postmaster;
  try {
    const backend = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    postmaster = isPostgres(backend) ? parentOf(backend) : undefined;
    if (postmaster !== undefined && !isPostgres(postmaster)) postmaster = undefined;
  } catch {
    postmaster = undefined;
  } finally {
    await client.end();
  }
  if (postmaster === undefined) return { reason: 'the server is not a postgres process on this host' };
  // The postmaster and its children (backends, background workers); backends forked later inherit its mask.
  const pids = [postmaster];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (parentOf(entry) === postmaster) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  const saved = new Map();
  for (const pid of pids) {
    try {
      saved.set(pid, allowedCpus(pid));
    } catch {
      // exited meanwhile
    }
  }
  const restore = () => {
    for (const [pid, mask] of saved) {
      try {
        setAffinity(pid, mask);
      } catch {
        // exited meanwhile
      }
    }
    saved.clear();
  };
  const serverCpus = cpus.slice(0, -1).join(',');
  try {
    setAffinity(postmaster, serverCpus);
  } catch {
    restore();
    return { reason: `no permission to set the CPU affinity of the server (pid ${postmaster})` };
  }
  for (const pid of saved.keys()) {
    try {
      if (pid !== postmaster) setAffinity(pid, serverCpus);
    } catch {
      // exited meanwhile
    }
  }
  process.once('exit', restore);
  for (const signal of ['SIGINT', 'SIGTERM'])
    process.once(signal, () => {
      restore();
      process.exit(130);
    });
  return {
    prefix: ['taskset', '-c', String(clientCpu)],
    serverCpus: `CPU${cpus.length > 2 ? 's' : ''} ${serverCpus}`,
    clientCpu,
    restore,
  };
}
