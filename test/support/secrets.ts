// A corpus of secrets in the shapes they take in real logs, and of innocent values that must survive.
// Every secret string is distinctive, so a test can search every output for it. The redaction corpus
// (redaction-corpus.ts) rides along in `corpus`, so that every output is checked for its shapes too.
import { SECRET_CASES } from './redaction-corpus.ts';

export const SECRET_VALUES = {
  jwt: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
  bearer: 'Zm9vYmFyLWJlYXJlci10b2tlbi0xMjM0NQ',
  basic: 'dXNlcjpwYXNzd29yZC1iYXNpYw==',
  pgPassword: 'pg-Sup3rS3cret',
  mysqlPassword: 'my-S3cretPw',
  mongoPassword: 'mongo-Pa55word',
  amqpPassword: 'amqp-Pa55word',
  redisPassword: 'redis-Pa55word',
  visa: '4111 1111 1111 1111',
  mastercard: '5500-0000-0000-0004',
  amex: '378282246310005',
  awsKeyId: 'AKIAIOSFODNN7EXAMPLE',
  awsSecret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  github: 'ghp_1234567890abcdefghijklmnopqrstuvwxyzAB',
  githubFine: 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789',
  slack: 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
  stripe: 'sk_live_4eC39HqLyjWDarjtT1zdp7dc',
  google: 'AIzaSyA-1234567890abcdefghijklmnopqrstu',
  pemBody: 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7',
  sqlPassword: 'role-Pa55w0rd',
  keyPassword: 'plain-password-value',
  keyToken: 'opaque-token-value',
  keyApiKey: 'opaque-api-key-value',
  keyCookie: 'session=opaque-cookie-value',
  keyCvv: '737',
  keySsn: '078-05-1120',
  keyClientSecret: 'opaque-client-secret',
  keyRefresh: 'opaque-refresh-token',
  keyPrivate: 'opaque-private-key',
  userPattern: 'ACME-TENANT-SECRET-42',
} as const;

const s = SECRET_VALUES;

/** A record full of secrets: by key at any depth and in arrays, and by value inside text. */
export function secretRecord(): Record<string, unknown> {
  return {
    password: s.keyPassword,
    nested: {
      deeper: [{ API_KEY: s.keyApiKey }, { 'x-api-key': s.keyApiKey }],
      Authorization: `Bearer ${s.bearer}`,
    },
    headers: { cookie: s.keyCookie, 'Set-Cookie': [s.keyCookie] },
    payment: { card_number: '4111111111111111', CVV: s.keyCvv, holder: 'Jane Roe' },
    user: { ssn: s.keySsn, name: 'jane' },
    oauth: {
      client_secret: s.keyClientSecret,
      refresh_token: s.keyRefresh,
      accessToken: s.keyToken,
      id_token: s.jwt,
    },
    tls: { private_key: s.keyPrivate },
    dsn: `postgres://app:${s.pgPassword}@db.internal:5432/ledger`,
    urls: [
      `mysql://root:${s.mysqlPassword}@10.0.0.5/app`,
      `mongodb+srv://svc:${s.mongoPassword}@cluster0.example.net/db`,
      `amqp://guest:${s.amqpPassword}@rabbit:5672`,
      `redis://:${s.redisPassword}@cache:6379/0`,
    ],
    query: `ALTER ROLE app PASSWORD '${s.sqlPassword}'`,
    conn: `host=db user=app password=${s.pgPassword} dbname=ledger`,
    tenant: `tenant key ${s.userPattern} in use`,
    msg: `login by jane with Basic ${s.basic}; card ${s.visa} and ${s.mastercard} and ${s.amex}; jwt ${s.jwt}; aws ${s.awsKeyId} secret_access_key=${s.awsSecret}; ${s.github} ${s.githubFine} ${s.slack} ${s.stripe} ${s.google}`,
    corpus: SECRET_CASES.map((c) => c.logged),
    err: {
      type: 'Error',
      message: `connect failed for postgres://app:${s.pgPassword}@db:5432/x`,
      stack: `Error: token ${s.github} rejected\n    at connect (/app/db.js:10:5)\n-----BEGIN RSA PRIVATE KEY-----\n${s.pemBody}\n-----END RSA PRIVATE KEY-----`,
    },
  };
}

/** Innocent keys and values that must come out exactly as they went in. */
export function innocentRecord(): Record<string, unknown> {
  return {
    monkey: 'banana',
    author: 'Jane Austen',
    tokenizer_version: '2.1',
    keyboard: 'qwerty',
    max_tokens: 4096,
    order_id: '4111111111111112', // 16 digits, fails Luhn
    uuid: '550e8400-e29b-41d4-a716-446655440000',
    trace: { id: '4bf92f3536b3b0ff6a6f0d1e27d1e0b1' },
    epoch_ms: 1764150000000,
    url: 'https://example.com:8443/path?q=1',
    note: 'the password reset page was visited',
    sql: 'SELECT * FROM users WHERE id = $1',
    passwordless: true,
  };
}

/** The corpus's secrets long enough to be searched for in a whole output (short ones, such as a 3-digit CVV, are checked by test/redaction.test.ts). */
export const CORPUS_SECRETS: Record<string, string> = Object.fromEntries(
  SECRET_CASES.filter((c) => c.secret.length >= 8).map((c) => [c.shape, c.secret]),
);
