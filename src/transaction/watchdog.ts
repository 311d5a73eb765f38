/**
 * Long- and idle-transaction detection, by one periodic sweep over the open transactions; nothing is
 * formatted until a record fires. The opening code location is captured as a V8 structured stack
 * (Error.captureStackTrace), cached per transaction function (see `captureOrigin`), and only formatted into
 * text when a record is written (bench/transaction.mjs measures it).
 *
 * idle = no query in flight: the classic mistake is an HTTP call made inside a transaction, holding locks
 * and a pooled connection while PostgreSQL waits (compare idle_in_transaction_session_timeout,
 * https://www.postgresql.org/docs/current/runtime-config-client.html).
 */
import { processConfig, type TxOrigin } from '../config/env.js';
import { dbEvent } from '../ecs/fields.js';
import { currentLogScope, inLogScope } from '../ecs/log-context.js';
import { captureCallSite, type Origin, originFields } from '../ecs/origin.js';
import { pgsightLogger } from '../ecs/pgsight-logger.js';

/**
 * Capture where a transaction was opened; `above` is the function whose caller is the origin. One frame, the
 * app's call site: `above` is the pgsight function the app called, so the next frame is the app's. More
 * frames would make V8 walk the await chain for async frames, on every transaction.
 */
const captureStack = (above: (...args: never[]) => unknown): Origin => captureCallSite(above, ORIGIN_FRAMES);

/**
 * Call sites seen per transaction function, keyed by its source text (and the transaction's name).
 * Capturing a stack is costly (V8 rebuilds the optimized caller's frames to find the call's position):
 * several percent of a short transaction (bench/transaction.mjs), so in `cached` mode a function's origin is
 * captured on its first two uses and then re-checked every RECHECK_EVERY-th use. One function text opened
 * from two places (or a helper called from many) differs on a check, and is captured on every use from
 * then on; until that check, the second place's records name the first (README, Watchdog).
 */
interface Site {
  origin: Origin;
  /** The origin's first frame, formatted on the first check. */
  position: string | undefined;
  uses: number;
  /** Seen opened from more than one place: capture every time. */
  varies: boolean;
}
const sites = new Map<string, Site>();
const MAX_SITES = 2000;
/** Longer functions are captured every time: hashing their text would cost about as much. */
const MAX_KEY_LENGTH = 4096;
const RECHECK_EVERY = 256;

/** The first frame of a captured origin (formatting its stack). */
const firstFrame = (origin: Origin): string | undefined => origin.stack?.split('\n', 2)[1];

/**
 * Where a transaction was opened: the caller of `above`. `fn` is the transaction's function (or the
 * decorated method) and `name` the transaction's name: together they key the cache in `cached` mode
 * (PGSIGHT_TX_ORIGIN).
 */
export function captureOrigin(above: (...args: never[]) => unknown, fn?: unknown, name?: string): Origin {
  if (typeof fn !== 'function' || watchdogSettings().origin === 'exact') return captureStack(above);
  const text = Function.prototype.toString.call(fn);
  if (text.length > MAX_KEY_LENGTH) return captureStack(above);
  const key = name === undefined ? text : `${name}\u0000${text}`;
  const site = sites.get(key);
  if (site === undefined) {
    const origin = captureStack(above);
    // Bound and native functions all print alike: their text names no place, so their entry is marked
    // `varies` and captured every time (checked here, on a miss, so that a hit reads no more of the text).
    const anonymous = text.endsWith('[native code] }');
    if (sites.size < MAX_SITES) sites.set(key, { origin, position: undefined, uses: 1, varies: anonymous });
    return origin;
  }
  if (site.varies) return captureStack(above);
  if (++site.uses % RECHECK_EVERY !== 1 && site.uses > 2) return site.origin;
  // The first reuse, then every RECHECK_EVERY-th: still the same place? (Capturing and formatting cost tens
  // of µs in a real caller: rarely.)
  const origin = captureStack(above);
  site.position ??= firstFrame(site.origin);
  if (firstFrame(origin) !== site.position) site.varies = true;
  return origin;
}

/** For tests: forget the cached call sites. */
export function clearOriginCache(): void {
  sites.clear();
}

/** Frames kept for `code.stacktrace`. */
const ORIGIN_FRAMES = 1;

interface WatchdogSettings {
  warnMs: number;
  idleMs: number;
  origin: TxOrigin;
}
let settings: WatchdogSettings | undefined;

/** PGSIGHT_TX_WARN_MS / PGSIGHT_TX_IDLE_MS / PGSIGHT_TX_ORIGIN, read once. */
function watchdogSettings(): WatchdogSettings {
  if (!settings) {
    const config = processConfig();
    settings = { warnMs: config.txWarnMs, idleMs: config.txIdleMs, origin: config.txOrigin };
  }
  return settings;
}

/** PGSIGHT_TX_WARN_MS / PGSIGHT_TX_IDLE_MS, read once. */
export function watchdogThresholds(): { warnMs: number; idleMs: number } {
  return watchdogSettings();
}

/** False when both thresholds are 0: transactions then skip the watchdog entirely. */
export function watchdogEnabled(): boolean {
  const { warnMs, idleMs } = watchdogThresholds();
  return warnMs > 0 || idleMs > 0;
}

/** For tests and for apps that configure in code; `undefined` goes back to the environment's. */
export function setWatchdogThresholds(
  value: { warnMs: number; idleMs: number; origin?: TxOrigin } | undefined,
): void {
  settings = value && { ...value, origin: value.origin ?? processConfig().txOrigin };
  // The sweep period follows the thresholds; the next transaction restarts the sweeper with the new one.
  clearInterval(sweeper);
  sweeper = undefined;
}

/**
 * Every open transaction's watchdog is in one list, swept by one unref'd interval: opening and closing a
 * transaction links and unlinks it (a few pointer writes, no hashing), not two timers. The interval stops
 * itself once no transaction has been open for a whole sweep. A long-transaction record fires at most one
 * sweep period late, an idle one at most two (idleness is seen from one sweep to the next).
 */
let head: Watchdog | undefined;
let sweeper: NodeJS.Timeout | undefined;

function sweepPeriodMs({ warnMs, idleMs }: { warnMs: number; idleMs: number }): number {
  const shortest = Math.min(warnMs || Number.POSITIVE_INFINITY, idleMs || Number.POSITIVE_INFINITY);
  return Math.max(10, Math.min(1000, Math.floor(shortest / 5)));
}

function sweep(): void {
  if (head === undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
    return;
  }
  const now = performance.now();
  const { warnMs, idleMs } = watchdogSettings();
  for (let watchdog: Watchdog | undefined = head; watchdog !== undefined; watchdog = watchdog.next)
    watchdog.check(now, warnMs, idleMs);
}

/** What a watchdog's records say about the transaction it watches (its `db.*` fields). */
export interface WatchedSubject {
  watchdogFields(): Record<string, unknown>;
}

/**
 * Where the open transaction on server backend `pid` was opened, when this process opened it and watches it
 * (`transaction()`, or a hand-written BEGIN under the preload): the code location forensics names for a
 * blocker. A walk over the open transactions, made only when a blocked query is sampled.
 */
export function originOfBackend(pid: number): Origin | undefined {
  for (let watchdog: Watchdog | undefined = head; watchdog !== undefined; watchdog = watchdog.next)
    if (watchdog.backendPid === pid) return watchdog.openedFrom;
  return undefined;
}

/** What the sweep reads of a pg client: pg's JS client clears `readyForQuery` while a query is out. */
interface WatchedClient {
  /** The server backend's pid (pg's BackendKeyData). */
  processID?: number;
  readyForQuery?: unknown;
  connection?: { stream?: { bytesWritten?: number } };
}

/**
 * One open transaction, as the sweep sees it. Queries are not timed one by one: each sweep looks at the
 * client (a query out, or bytes written since the last sweep, is activity) and the statements counted by
 * pgsight's wrappers, so a query costs an increment, not a promise reaction. Idleness is known to within a
 * sweep period, which is a fifth of the threshold.
 */
export class Watchdog {
  /** When a sweep last saw the transaction active. */
  private activeAt: number;
  private activity = -1;
  /** Statements sent through pgsight's wrappers. */
  queries = 0;
  /** Statements in flight, for wrappers that see them end (the preload's); 0 otherwise. */
  private inFlight = 0;
  /** The client reports whether a query is out (pg's JS client does); if not, wrappers must track ends. */
  readonly observable: boolean;
  private endedCallback: (() => void) | undefined;
  private longLogged = false;
  private idleLogged = false;
  /** @internal the list of open watchdogs */
  prev: Watchdog | undefined;
  /** @internal */
  next: Watchdog | undefined;
  private linked = true;

  private readonly client: WatchedClient;
  /** The log context of the flow that opened the transaction: the sweep runs in a timer's. */
  private readonly scope = currentLogScope();

  /** `openedAt` (performance.now()) is the caller's when it has read the clock already. */
  constructor(
    client: object,
    private readonly subject: WatchedSubject,
    private readonly origin: Origin,
    private readonly openedAt = performance.now(),
  ) {
    this.activeAt = openedAt;
    this.client = client as WatchedClient;
    this.observable = typeof this.client.readyForQuery === 'boolean';
    this.next = head;
    if (head !== undefined) head.prev = this;
    head = this;
    sweeper ??= setInterval(sweep, sweepPeriodMs(watchdogSettings())).unref();
  }

  /** @internal the server backend the transaction runs on */
  get backendPid(): number | undefined {
    return this.client.processID;
  }

  /** @internal where the transaction was opened */
  get openedFrom(): Origin {
    return this.origin;
  }

  /** queryEnded, bound once (on first use): for wrappers of clients that are not observable. */
  get ended(): () => void {
    this.endedCallback ??= () => this.queryEnded();
    return this.endedCallback;
  }

  queryStarted(): void {
    this.queries++;
    this.inFlight++;
  }

  queryEnded(): void {
    this.queries++;
    this.inFlight--;
  }

  stop(): void {
    if (!this.linked) return;
    this.linked = false;
    if (this.prev !== undefined) this.prev.next = this.next;
    else head = this.next;
    if (this.next !== undefined) this.next.prev = this.prev;
    this.prev = undefined;
    this.next = undefined;
  }

  /** @internal called by the sweep */
  check(now: number, warnMs: number, idleMs: number): void {
    const activity = this.queries + (this.client.connection?.stream?.bytesWritten ?? 0);
    if (this.inFlight > 0 || this.client.readyForQuery === false || activity !== this.activity) {
      this.activity = activity;
      this.activeAt = now;
    }
    if (!this.longLogged && warnMs > 0 && now - this.openedAt >= warnMs) {
      this.longLogged = true;
      const ms = now - this.openedAt;
      inLogScope(this.scope, () =>
        pgsightLogger().warn(
          this.record('db.transaction.long', ms, {}),
          `transaction open for ${Math.round(ms)} ms (PGSIGHT_TX_WARN_MS)`,
        ),
      );
    }
    if (!this.idleLogged && idleMs > 0 && now - this.activeAt >= idleMs) {
      this.idleLogged = true;
      const idle = now - this.activeAt;
      inLogScope(this.scope, () =>
        pgsightLogger().warn(
          this.record('db.transaction.idle', now - this.openedAt, { idle_ms: Math.round(idle) }),
          `transaction idle for ${Math.round(idle)} ms with no query in flight (PGSIGHT_TX_IDLE_MS)`,
        ),
      );
    }
  }

  private record(
    action: string,
    openMs: number,
    transaction: Record<string, unknown>,
  ): Record<string, unknown> {
    const fields = this.subject.watchdogFields();
    const db = (fields.db ?? {}) as Record<string, unknown>;
    return {
      ...fields,
      event: dbEvent(action, undefined, openMs),
      db: { ...db, transaction: { ...(db.transaction as object), ...transaction } },
      ...originFields(this.origin),
    };
  }
}
