// `npm run bench:redact`: the redaction engine alone, CPU per unit of work, the current engine
// (dist/transports/redact/) against the previous one (bench/baselines/redact-previous.ts), alternated in one
// process:
//   - a realistic mix of strings (log messages, SQL, stack traces, header dumps, URLs): ns per KB;
//   - the transport benchmark's records (bench/transport-app.mjs), parsed: µs per record;
//   - pathological inputs at 64 KB (current engine; the previous one at 4 KB, where it still finishes): ns per KB.

import { createRedactor } from '../dist/transports/redact/index.js';
import { createRedactor as createPrevious } from './baselines/redact-previous.ts';

const ROUNDS = 9;
const mix = [];
for (let i = 0; i < 400; i++) {
  mix.push(
    `order ${100000 + i} placed by user ${i % 97} in eu-west-1 after ${i % 13} retries`,
    `SELECT o.id, o.total FROM orders o JOIN users u ON u.id = o.user_id WHERE u.email = $1 AND o.created_at > now() - interval '${i % 30} days'`,
    `Error: connect ECONNREFUSED 10.0.${i % 255}.1:5432\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1611:16)\n    at Pool.connect (/app/node_modules/pg-pool/index.js:45:11)\n    at async handler (/app/src/orders.js:${i % 400}:7)`,
    `GET /api/v1/orders?page=${i % 9}&sort=desc HTTP/1.1\nHost: shop.example.com\nAccept: application/json\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)`,
    `request ${crypto.randomUUID()} completed with 200 in ${i % 250} ms, trace 4bf92f3536b3b0ff6a6f0d1e27d1e0b1`,
    `https://shop.example.com/checkout/${i}?step=payment&lang=en#summary`,
  );
}
const mixKb = mix.reduce((n, s) => n + s.length, 0) / 1024;
const records = Array.from({ length: 20000 }, (_, i) =>
  JSON.stringify({
    level: 30,
    time: 1764150000000 + i,
    pid: 1,
    hostname: 'vm',
    user: { id: i % 1000, name: 'jane', token: 'opaque' },
    order: { id: 100000 + i, total: 1234, currency: 'EUR' },
    region: 'eu-west-1',
    attempt: 1,
    tags: ['checkout', 'web'],
    latency: { ms: i % 97 },
    msg: 'order placed',
  }),
);
const PATHOLOGICAL = {
  'a.': (kb) => 'a.'.repeat(kb * 512),
  eyJ: (kb) => 'eyJ'.repeat(Math.ceil((kb * 1024) / 3)),
  'Bearer ': (kb) => 'Bearer '.repeat(Math.ceil((kb * 1024) / 7)),
  'password=': (kb) => 'password='.repeat(Math.ceil((kb * 1024) / 9)),
  '-----BEGIN, no END': (kb) => `-----BEGIN PRIVATE KEY-----${'A'.repeat(kb * 1024)}`,
  'digits with separators': (kb) => '1 2-'.repeat(kb * 256),
  'scheme://': (kb) => 'a://a:'.repeat(Math.ceil((kb * 1024) / 6)),
};

const cpu = (fn) => {
  const t = process.cpuUsage();
  fn();
  const u = process.cpuUsage(t);
  return u.user + u.system; // µs
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const engines = { current: createRedactor(), previous: createPrevious() };
const results = { current: { mix: [], record: [] }, previous: { mix: [], record: [] } };
for (let round = 0; round < ROUNDS; round++) {
  for (const name of round % 2 ? ['previous', 'current'] : ['current', 'previous']) {
    const redact = engines[name];
    results[name].mix.push(
      (cpu(() => {
        for (const s of mix) redact.text(s);
      }) *
        1000) /
        mixKb,
    );
    const parsed = records.map((line) => JSON.parse(line));
    results[name].record.push(
      cpu(() => {
        for (const r of parsed) redact(r);
      }) / records.length,
    );
  }
}
const row = (label, unit, cur, prev) =>
  console.log(
    `| ${label} | ${prev.toFixed(unit === 'ns/KB' ? 0 : 3)} ${unit} | ${cur.toFixed(unit === 'ns/KB' ? 0 : 3)} ${unit} | ${(cur / prev).toFixed(2)} |`,
  );
console.log(`bench:redact: ${ROUNDS} rounds alternated, medians; CPU of this process`);
console.log('| input | previous engine | current engine | ratio (current / previous) |');
console.log('|---|---|---|---|');
row(
  `realistic mix (${mix.length} strings, ${mixKb.toFixed(0)} KB)`,
  'ns/KB',
  median(results.current.mix),
  median(results.previous.mix),
);
row(
  'transport benchmark record, parsed',
  'µs/record',
  median(results.current.record),
  median(results.previous.record),
);
console.log(
  '\npathological inputs, ns per KB (current at 16 and 64 KB; previous at 4 KB, larger takes seconds)',
);
console.log('| input | current, 16 KB | current, 64 KB | previous, 4 KB |');
console.log('|---|---|---|---|');
for (const [name, make] of Object.entries(PATHOLOGICAL)) {
  const at = (redact, kb) => (median([0, 1, 2].map(() => cpu(() => redact.text(make(kb))))) * 1000) / kb;
  console.log(
    `| ${name} | ${at(engines.current, 16).toFixed(0)} | ${at(engines.current, 64).toFixed(0)} | ${at(engines.previous, 4).toFixed(0)} |`,
  );
}
