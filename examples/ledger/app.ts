/**
 * The ledger's HTTP API on node:http: a route table, JSON in and out, and one place that turns errors into
 * answers. `HttpError`s are the client's (4xx, with a body naming what was wrong); anything else is a 500
 * with a generic body, its details only in the error record requestLogging writes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type pg from 'pg';
import { type Transaction, transaction } from 'pgsight';
import type { Logger } from 'pino';
import type { LedgerConfig } from './config.ts';
import { interledgerTransfer, parseInterledger } from './interledger.ts';
import { HttpError, invalid, parseBalance, parseTransfer, transfer } from './transfers.ts';

type Params = Record<string, string>;
type Handler = (req: IncomingMessage, params: Params, body: unknown) => Promise<[number, unknown]>;

interface Route {
  method: string;
  /** The route template, `http.route` on the request's records. */
  template: string;
  pattern: RegExp;
  handler: Handler;
}

const MAX_BODY_BYTES = 64 * 1024;

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES)
        reject(new HttpError(413, { error: `the body is larger than ${MAX_BODY_BYTES} bytes` }));
      else chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(invalid({ body: 'is not valid JSON' }));
      }
    });
  });
}

function id(params: Params, name = 'id'): number {
  const value = Number(params[name]);
  if (!/^\d{1,15}$/.test(params[name] ?? '') || value < 1)
    throw invalid({ [name]: 'must be a positive integer' });
  return value;
}

const account = (row: { id: string; balance: string }) => ({
  id: Number(row.id),
  balance: Number(row.balance),
});
const transferRow = (row: {
  id: string;
  from_id: string;
  to_id: string;
  amount: string;
  created_at: Date;
}) => ({
  id: Number(row.id),
  from: Number(row.from_id),
  to: Number(row.to_id),
  amount: Number(row.amount),
  createdAt: row.created_at.toISOString(),
});

export function createLedger(pool: pg.Pool, config: LedgerConfig, logger: Logger, second?: pg.Pool) {
  /** The outbox relay: marks the row published (a real service would hand it to a broker here). */
  async function publish(outboxId: number): Promise<void> {
    const { rowCount } = await pool.query(
      'UPDATE outbox SET published_at = now() WHERE id = $1 AND published_at IS NULL',
      [outboxId],
    );
    if (rowCount) logger.debug({ outbox: { id: outboxId } }, 'outbox event transfer.created published');
  }

  const routes: Route[] = [];
  const route = (method: string, template: string, handler: Handler) =>
    routes.push({
      method,
      template,
      pattern: new RegExp(`^${template.replace(/:(\w+)/g, '(?<$1>[^/]+)')}$`),
      handler,
    });

  route('GET', '/healthz', async () => {
    await pool.query('SELECT 1 AS healthy');
    return [200, { status: 'ok' }];
  });

  route('POST', '/accounts', async (_req, _params, body) => {
    const balance = parseBalance(body);
    const { rows } = await pool.query('INSERT INTO accounts (balance) VALUES ($1) RETURNING id, balance', [
      balance,
    ]);
    return [201, account(rows[0])];
  });

  route('GET', '/accounts', async () => {
    const { rows } = await pool.query('SELECT id, balance FROM accounts ORDER BY id LIMIT 1000');
    return [200, rows.map(account)];
  });

  route('GET', '/accounts/:id', async (_req, params) => {
    const { rows } = await pool.query('SELECT id, balance FROM accounts WHERE id = $1', [id(params)]);
    if (rows.length === 0) throw new HttpError(404, { error: 'account not found', accounts: [id(params)] });
    return [200, account(rows[0])];
  });

  route('GET', '/accounts/:id/transfers', async (_req, params) => {
    const accountId = id(params);
    const found = await pool.query('SELECT 1 FROM accounts WHERE id = $1', [accountId]);
    if (found.rowCount === 0) throw new HttpError(404, { error: 'account not found', accounts: [accountId] });
    const { rows } = await pool.query(
      `SELECT id, from_id, to_id, amount, created_at FROM transfers
        WHERE from_id = $1 OR to_id = $1 ORDER BY id DESC LIMIT 1000`,
      [accountId],
    );
    return [200, rows.map(transferRow)];
  });

  route('POST', '/transfers', async (req, _params, body) => {
    const header = req.headers['idempotency-key'];
    const key = Array.isArray(header) ? header[0] : header;
    const result = await transfer(pool, parseTransfer(body, key), key, publish);
    return [201, result.body];
  });

  route('GET', '/transfers/:id', async (_req, params) => {
    const { rows } = await pool.query(
      'SELECT id, from_id, to_id, amount, created_at FROM transfers WHERE id = $1',
      [id(params)],
    );
    if (rows.length === 0) throw new HttpError(404, { error: 'transfer not found', transfer: id(params) });
    return [200, transferRow(rows[0])];
  });

  // Ledger B and transfers between the two ledgers (two-phase commit: interledger.ts).
  const ledgerB = () => {
    if (!second) throw new HttpError(503, { error: 'ledger B is not available' });
    return second;
  };
  route('POST', '/interledger/accounts', async (_req, _params, body) => {
    const balance = parseBalance(body);
    const { rows } = await ledgerB().query(
      'INSERT INTO accounts (balance) VALUES ($1) RETURNING id, balance',
      [balance],
    );
    return [201, { ...account(rows[0]), ledger: 'b' }];
  });
  route('GET', '/interledger/accounts/:id', async (_req, params) => {
    const { rows } = await ledgerB().query('SELECT id, balance FROM accounts WHERE id = $1', [id(params)]);
    if (rows.length === 0)
      throw new HttpError(404, { error: 'account not found', ledger: 'b', accounts: [id(params)] });
    return [200, { ...account(rows[0]), ledger: 'b' }];
  });
  route('POST', '/interledger/transfers', async (_req, _params, body) => {
    const request = parseInterledger(body);
    try {
      return [201, await interledgerTransfer(pool, ledgerB(), request)];
    } catch (error) {
      // Rolled back on both ledgers before the decision (recovery got there first, or a participant could
      // not prepare): nothing moved, the client may try again.
      if ((error as { code?: string }).code === 'PGSIGHT_ERR_2PC_ABORTED')
        throw new HttpError(503, { error: 'the transfer was rolled back on both ledgers; try again' });
      throw error;
    }
  });

  // Deliberately slow (pg_sleep), so the slow-query record and the dashboards have something to show.
  route('GET', '/reports/daily', async () => {
    const { rows } = await pool.query(
      `WITH pause AS (SELECT pg_sleep(0.6))
       SELECT date_trunc('day', t.created_at)::date::text AS day, count(*)::int AS transfers, sum(t.amount)::text AS volume
         FROM transfers t, pause GROUP BY 1 ORDER BY 1 DESC LIMIT 31`,
    );
    return [200, rows.map((r) => ({ day: r.day, transfers: r.transfers, volume: Number(r.volume) }))];
  });

  // Sends a transfer's receipt to a partner over HTTP. The call belongs outside the transaction: made inside
  // (LEDGER_CALL_INSIDE_TX=true) it holds a row lock and a pooled connection while PostgreSQL waits, and
  // pgsight's watchdog writes a db.transaction.idle record naming this line.
  route('POST', '/transfers/:id/receipt', async (_req, params) => {
    const transferId = id(params);
    const partner = config.partnerUrl ?? `http://${config.host}:${listeningPort}/partner/receipts`;
    const send = async (payload: unknown) => {
      const response = await fetch(partner, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(10_000),
      });
      if (!response.ok) throw new Error(`partner answered ${response.status}`);
    };
    const markSent = (tx: Transaction) =>
      tx.query(
        'UPDATE transfers SET receipt_sent_at = now() WHERE id = $1 AND receipt_sent_at IS NULL RETURNING id',
        [transferId],
      );
    const load = async (db: Transaction) => {
      const { rows } = await db.query(
        'SELECT id, from_id, to_id, amount, created_at FROM transfers WHERE id = $1 FOR UPDATE',
        [transferId],
      );
      if (rows.length === 0) throw new HttpError(404, { error: 'transfer not found', transfer: transferId });
      return transferRow(rows[0]);
    };
    if (config.callInsideTransaction) {
      await transaction(pool, async (tx) => send(await load(tx)).then(() => markSent(tx)), {
        name: 'receipt',
      });
    } else {
      const receipt = await transaction(pool, (tx) => load(tx), { name: 'receipt_load' });
      await send(receipt);
      await transaction(pool, (tx) => markSent(tx), { name: 'receipt_mark' });
    }
    return [200, { id: transferId, receipt: 'sent' }];
  });

  // The simulated partner the receipts go to: answers after LEDGER_PARTNER_DELAY_MS.
  route('POST', '/partner/receipts', async () => {
    await new Promise((resolve) => setTimeout(resolve, config.partnerDelayMs));
    return [202, { accepted: true }];
  });

  let listeningPort = config.port;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const matches = routes.filter((r) => r.pattern.test(path));
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    const match = matches.find((r) => r.method === req.method);
    if (!match) {
      req.resume();
      if (matches.length > 0) return send(405, { error: `${req.method} is not allowed on ${path}` });
      return send(404, { error: 'not found' });
    }
    try {
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const params = (match.pattern.exec(path)?.groups ?? {}) as Params;
      const [status, answer] = await match.handler(req, params, body);
      send(status, answer);
    } catch (error) {
      if (error instanceof HttpError) return send(error.status, error.body);
      throw error; // requestLogging answers 500 with a generic body and logs the error
    }
  }

  return {
    handle,
    /** The route template of a request, for `http.route`. */
    routeOf(req: IncomingMessage): string | undefined {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      return routes.find((r) => r.method === req.method && r.pattern.test(path))?.template;
    },
    setPort(port: number) {
      listeningPort = port;
    },
    /** Publish what a crash left between COMMIT and the afterCommit hook. */
    async publishPending(): Promise<number> {
      const { rowCount } = await pool.query(
        'UPDATE outbox SET published_at = now() WHERE published_at IS NULL',
      );
      return rowCount ?? 0;
    },
  };
}
