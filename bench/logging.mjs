// npm run bench:logging — the log context's cost: a log call inside withLogContext on a createLogger-style
// logger (pino + pgsight's logMethod hook) vs the same call on a plain pino child logger carrying the same
// fields. Both write to an in-memory sink, so only the logging work is measured. Two shapes:
//   steady:      many calls in one context        vs  many calls on one child
//   per request: a new context, then 5 calls      vs  a new child, then 5 calls
// Adjacent blocks are paired in one process; the median pair ratio is reported. Target (issue #4): <= 1.15.
import pino from 'pino';
import { withLogContext } from '../dist/src/ecs/log-context.js';
import { logWithContext } from '../dist/src/log/create-logger.js';

const sink = { write() {} };
const plain = pino({ level: 'info' }, sink);
const hooked = pino({ level: 'info', hooks: { logMethod: logWithContext } }, sink);
const fields = (i) => ({ 'http.request.id': `req-${i}`, 'trace.id': '4bf92f3536b3b0ff6a6f0d1e27d1e0b1' });

const scenarios = {
  steady: {
    baseline: (n) => {
      const child = plain.child(fields(0));
      for (let i = 0; i < n; i++) child.info({ order: { id: i } }, 'order placed');
    },
    pgsight: (n) =>
      withLogContext(fields(0), () => {
        for (let i = 0; i < n; i++) hooked.info({ order: { id: i } }, 'order placed');
      }),
  },
  'per request': {
    baseline: (n) => {
      for (let r = 0; r < n / 5; r++) {
        const child = plain.child(fields(r));
        for (let i = 0; i < 5; i++) child.info({ order: { id: i } }, 'order placed');
      }
    },
    pgsight: (n) => {
      for (let r = 0; r < n / 5; r++)
        withLogContext(fields(r), () => {
          for (let i = 0; i < 5; i++) hooked.info({ order: { id: i } }, 'order placed');
        });
    },
  },
};

const cpu = (fn, n) => {
  const c0 = process.cpuUsage();
  fn(n);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log(
  `logging benchmark: node ${process.version}, in-memory sink, 41 adjacent pairs of 20,000-call blocks`,
);
for (const [name, { baseline, pgsight }] of Object.entries(scenarios)) {
  baseline(20_000);
  pgsight(20_000);
  const ratios = [];
  const us = { baseline: [], pgsight: [] };
  for (let b = 0; b < 41; b++) {
    const first = b % 2 ? 'pgsight' : 'baseline';
    const pair = {};
    for (const variant of first === 'baseline' ? ['baseline', 'pgsight'] : ['pgsight', 'baseline'])
      pair[variant] = cpu(variant === 'baseline' ? baseline : pgsight, 20_000);
    us.baseline.push(pair.baseline);
    us.pgsight.push(pair.pgsight);
    ratios.push(pair.pgsight / pair.baseline);
  }
  const ratio = median(ratios);
  console.log(
    `${name.padEnd(12)} plain child ${median(us.baseline).toFixed(3)} µs/call   withLogContext ${median(us.pgsight).toFixed(3)} µs/call   ratio ${ratio.toFixed(3)} (target <= 1.15 ${ratio <= 1.15 ? 'met' : 'NOT met'})`,
  );
}
