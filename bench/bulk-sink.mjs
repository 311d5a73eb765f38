// A cheap `_bulk` endpoint for bench:transport, run in its own process: it costs the sender what a remote
// cluster costs it (nothing but the socket), so the sender's CPU is what is measured. It counts the NDJSON
// lines of each `_bulk` body without parsing them and answers as Elasticsearch answers a bulk request whose
// every item was stored (https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html):
// `{"took","errors":false,"items":[{"<op>":{"status":201,"result":"created"}}...]}`, one item per action,
// the op (`index` / `create`) as the first action line names it; a `filter_path` that keeps no field of a
// stored item (`errors,items.*.failure_store`) gets `{"errors":false}`, as Elasticsearch filters the response. `x-elastic-product: Elasticsearch` on every answer (the official
// client checks it). `GET /` answers as a cluster's root does.
//   GET /__count  → { docs }       POST /__reset → docs = 0
// Prints `{"port":N}` once listening.
import { createServer } from 'node:http';

let docs = 0;
const headers = { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' };

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://sink');
  if (req.method === 'GET' && url.pathname === '/__count') return res.end(JSON.stringify({ docs }));
  if (req.method === 'POST' && url.pathname === '/__reset') {
    docs = 0;
    return res.end('{}');
  }
  if (url.pathname === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, headers);
    return res.end(
      JSON.stringify({
        name: 'sink',
        cluster_name: 'sink',
        version: { number: '8.17.0', build_flavor: 'default' },
      }),
    );
  }
  if (!url.pathname.endsWith('/_bulk')) {
    res.writeHead(404, headers);
    return res.end('{}');
  }
  let newlines = 0;
  let op;
  let trailing = 10;
  req.on('data', (chunk) => {
    if (op === undefined) op = /^\{"(\w+)"/.exec(chunk.toString('latin1', 0, 16))?.[1] ?? 'index';
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines++;
    trailing = chunk[chunk.length - 1];
  });
  req.on('end', () => {
    // A body may end without its last newline; actions and documents alternate.
    const lines = newlines + (trailing === 10 ? 0 : 1);
    const count = Math.floor(lines / 2);
    docs += count;
    res.writeHead(200, headers);
    // A filter without item statuses empties every stored item: Elasticsearch leaves them out.
    const filter = url.searchParams.get('filter_path');
    if (filter && !filter.includes('items.*.status')) return res.end('{"errors":false}');
    const item = `{"${op}":{"_index":"bench","status":201,"result":"created"}}`;
    res.end(`{"took":1,"errors":false,"items":[${Array.from({ length: count }, () => item).join(',')}]}`);
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('disconnect', () => process.exit(0));
