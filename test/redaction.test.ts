// The redaction engine (transports/redact/): every shape of the corpus loses its secret and only its secret,
// innocent text is untouched, a secret spliced into random text never survives, and no rule takes more than
// linear time on pathological input.
import { describe, expect, it } from 'vitest';
import { createDocuments } from '../transports/document.js';
import { defaultPinoConfig } from '../transports/ecs.js';
import { catastrophicShape, createRedactor, RULES } from '../transports/redact/index.js';
import { INNOCENT_RECORD, SECRET_CASES } from './support/redaction-corpus.js';

const redact = createRedactor();
const render = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));
const redacted = (logged: string | Record<string, unknown>) =>
  typeof logged === 'string' ? redact.text(logged) : redact(structuredClone(logged));

describe('the corpus', () => {
  it.each(SECRET_CASES.map((c) => [c.shape, c] as const))('%s: the secret is gone', (_shape, c) => {
    const out = render(redacted(c.logged));
    expect(out).not.toContain(c.secret);
    expect(out).toContain('[REDACTED]');
  });

  it('keeps the text around a secret readable', () => {
    expect(redact.text('env: DATABASE_PASSWORD=dbp-141-xyz NODE_ENV=prod')).toBe(
      'env: DATABASE_PASSWORD=[REDACTED] NODE_ENV=prod',
    );
    expect(redact.text('GET /callback?token=qt-271-xyz&next=/home')).toBe(
      'GET /callback?token=[REDACTED]&next=/home',
    );
    expect(redact.text('body={"user":"jane","password":"ej-241-xyz"}')).toBe(
      'body={"user":"jane","password":"[REDACTED]"}',
    );
    expect(redact.text('Authorization: Digest username="jane", response="6629fa"')).toBe(
      'Authorization: Digest [REDACTED]',
    );
    expect(redact.text('ALTER ROLE app PASSWORD $pw$dq381-xyz$pw$')).toBe(
      "ALTER ROLE app PASSWORD '[REDACTED]'",
    );
    expect(redact.text('key:\n-----BEGIN PRIVATE KEY-----\nMIIEcut')).toBe(
      'key:\n-----BEGIN PRIVATE KEY-----[REDACTED]',
    );
    expect(redact({ passwords: ['a1', 'b2'], secrets: { s: 'x' }, keep: 1 })).toEqual({
      passwords: '[REDACTED]',
      secrets: '[REDACTED]',
      keep: 1,
    });
  });

  it('leaves every innocent key and value exactly as it was', () => {
    expect(redact(structuredClone(INNOCENT_RECORD))).toEqual(INNOCENT_RECORD);
  });
});

/** A small seeded generator, so a failure names the seed that reproduces it. */
function generator(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)] as T;
  return { next, pick };
}

const WORDS = [
  'the',
  'request',
  'failed',
  'for',
  'user',
  'jane',
  'order',
  'shipped',
  'retry',
  'in',
  'queue',
  'ok',
];
const PUNCTUATION = [' ', ', ', '; ', ' (', ') ', ' - ', '\n', ' | ', '. ', '\t', ' [', '] ', ' "', '" '];
/** Secrets that stand on their own in text (the corpus's string shapes whose secret is self-describing). */
const SPLICEABLE = SECRET_CASES.filter((c) => typeof c.logged === 'string' && c.logged.includes(c.secret));

describe('property: a secret spliced into innocent text', () => {
  it('never survives, and the text around it does', () => {
    for (let seed = 1; seed <= 1500; seed++) {
      const g = generator(seed);
      const words = (n: number) => Array.from({ length: n }, () => g.pick(WORDS)).join(' ');
      const before = words(1 + Math.floor(g.next() * 6));
      const after = words(1 + Math.floor(g.next() * 6));
      const c = g.pick(SPLICEABLE);
      // A header's value runs to the end of its line, as in a header dump: what follows starts a new line.
      const endsLine = /header|Authorization/.test(c.shape);
      const text = `${before}${g.pick(PUNCTUATION)}${c.logged as string}${endsLine ? '\n' : g.pick(PUNCTUATION)}${after}`;
      const out = redact.text(text);
      expect(out.includes(c.secret), `seed ${seed}, ${c.shape}: ${JSON.stringify(text)}`).toBe(false);
      expect(out.startsWith(before), `seed ${seed}: ${JSON.stringify(out)}`).toBe(true);
      // A key block whose END line is cut runs to the end of the string: nothing after it can be trusted.
      if (!/END line cut/.test(c.shape))
        expect(out.endsWith(after), `seed ${seed}: ${JSON.stringify(out)}`).toBe(true);
    }
  });

  it('leaves random innocent text unchanged', () => {
    for (let seed = 1; seed <= 1500; seed++) {
      const g = generator(seed * 7919);
      const parts = Array.from({ length: 12 }, () => `${g.pick(WORDS)}${g.pick(PUNCTUATION)}`);
      const text = parts.join('') + String(Math.floor(g.next() * 1e6));
      expect(redact.text(text), `seed ${seed}`).toBe(text);
    }
  });
});

/**
 * Inputs that make backtracking engines go quadratic or worse: long runs of one class, and each rule's own
 * prefix repeated without ever completing a match.
 */
const PATHOLOGICAL: Record<string, (kb: number) => string> = {
  'a.': (kb) => 'a.'.repeat(kb * 512),
  'a-': (kb) => 'a-'.repeat(kb * 512),
  'one letter': (kb) => 'a'.repeat(kb * 1024),
  eyJ: (kb) => 'eyJ'.repeat(Math.ceil((kb * 1024) / 3)),
  'eyJa.': (kb) => 'eyJaaaaa.'.repeat(Math.ceil((kb * 1024) / 9)),
  'Bearer ': (kb) => 'Bearer '.repeat(Math.ceil((kb * 1024) / 7)),
  'password=': (kb) => 'password='.repeat(Math.ceil((kb * 1024) / 9)),
  'password: ': (kb) => 'password: x'.repeat(Math.ceil((kb * 1024) / 11)),
  '"key":': (kb) => '"token":"'.repeat(Math.ceil((kb * 1024) / 9)),
  '-----BEGIN': (kb) => '-----BEGIN RSA PRIVATE KEY'.repeat(Math.ceil((kb * 1024) / 26)),
  'BEGIN no END': (kb) => `-----BEGIN PRIVATE KEY-----${'A'.repeat(kb * 1024)}`,
  'digits with separators': (kb) => '1 2-'.repeat(kb * 256),
  'digit run': (kb) => '4'.repeat(kb * 1024),
  'scheme://': (kb) => 'a://a:'.repeat(Math.ceil((kb * 1024) / 6)),
  'user:pass@': (kb) => 'u:p@'.repeat(kb * 256),
  'PASSWORD $': (kb) => 'PASSWORD $a$'.repeat(Math.ceil((kb * 1024) / 12)),
  'Cookie: ': (kb) => 'Cookie: '.repeat(kb * 128),
  'a=a=': (kb) => 'a='.repeat(kb * 512),
  'sk-': (kb) => 'sk-'.repeat(Math.ceil((kb * 1024) / 3)),
  'hex run': (kb) => '0123456789abcdef'.repeat(kb * 64),
};

/** CPU time (µs) of redacting `input`, the least of a few runs. */
function cpuMicros(input: string): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const start = process.cpuUsage();
    redact.text(input);
    const used = process.cpuUsage(start);
    best = Math.min(best, used.user + used.system);
  }
  return best;
}

describe('linear time', () => {
  it.each(Object.keys(PATHOLOGICAL))('%s: time per KB does not grow from 16 KB to 256 KB', (name) => {
    const make = PATHOLOGICAL[name] as (kb: number) => string;
    cpuMicros(make(16)); // warm up the compiled patterns
    const perKb16 = cpuMicros(make(16)) / 16;
    const perKb64 = cpuMicros(make(64)) / 64;
    const perKb256 = cpuMicros(make(256)) / 256;
    // Quadratic would be 16x from 16 to 256 KB; timer resolution and GC make small inputs noisy, so the
    // bound is loose, and read as a ratio between sizes, never as an absolute time.
    const floor = Math.max(perKb16, 2);
    expect(
      perKb256 / floor,
      `${name}: ${perKb16.toFixed(1)} / ${perKb64.toFixed(1)} / ${perKb256.toFixed(1)} µs per KB`,
    ).toBeLessThan(6);
  });

  it('every rule names where its format comes from, and has a distinct id', () => {
    expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
    for (const rule of RULES) expect(rule.source.length, rule.id).toBeGreaterThan(10);
  });
});

describe('user patterns', () => {
  it('are applied, case-insensitively', () => {
    const custom = createRedactor({ patterns: ['ACME-[0-9]{6}'] });
    expect(custom.text('tenant acme-123456 ok')).toBe('tenant [REDACTED] ok');
  });

  it.each(['(a+)+$', '(\\w*\\s?)*x', '(.*)+y', '([a-z]+){2,}q'])(
    '%s has the catastrophic shape',
    (source) => {
      expect(catastrophicShape(source)).toBe(true);
    },
  );

  it.each(['ACME-[0-9]{6}', '(ab)+', 'a+b+', '(?:x|y){3,5}', '[(+)]+'])('%s does not', (source) => {
    expect(catastrophicShape(source)).toBe(false);
  });
});

describe("the server's query id (db.query.id)", () => {
  // Card-like (an issuer's first digit, Luhn-valid), as about one query id in twenty is.
  const ids = ['4123456789012345677', '-5987654321098765433'];

  it('keeps its digits where pgsight writes it, and nowhere else', () => {
    for (const id of ids) {
      expect(redacted({ db: { query: { id } } })).toEqual({ db: { query: { id } } });
      expect(render(redacted({ query: { id } }))).not.toContain(id.replace('-', ''));
      expect(render(redacted({ a: { db: { query: { id: { id } } } } }))).not.toContain(id.replace('-', ''));
      expect(render(redacted({ db: { query: { text: id } } }))).not.toContain(id.replace('-', ''));
      expect(render(redacted({ db: { query: { id: `card ${id}` } } }))).not.toContain(id.replace('-', ''));
    }
  });

  it('is kept alike by the one-pass and general paths of the transport', () => {
    const documents = createDocuments(createRedactor(), defaultPinoConfig, {
      service: { name: 'test' },
      dataset: 'test.log',
      counters: { repaired: 0 },
    });
    for (const id of ids) {
      const line = JSON.stringify({ level: 30, time: 1, msg: 'slow', db: { query: { id } }, query: { id } });
      const general = documents.general(line, 'x');
      expect(JSON.parse(general).db.query.id).toBe(id);
      expect(JSON.parse(general).query.id).not.toContain(id.replace('-', ''));
      // A line the one-pass path models: it must take it, and write the same.
      const fast = documents.fast(line, 'x');
      expect(fast).toBe(general);
    }
  });
});
