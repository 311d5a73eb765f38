/**
 * A line from pino → the JSON of its ECS document, with its id; never throws: a record always ships.
 *
 *   line ─▶ one-pass path (fast-document.ts) ─────────────────────────────▶ JSON as UTF-8, into a sink
 *           └ a line it does not model ─▶ JSON.parse → redact → toEcs → JSON.stringify
 *
 * Redacting before the mapping scans only what the app logged: every value of the ECS document comes from it,
 * except the fields the mapping writes itself (timestamp, level, service, ids), which need no scan.
 */

import { type DocumentId, textId } from './document-id.js';
import { type EcsOptions, type PinoConfig, toEcs, unparsedLine } from './ecs.js';
import { createFastPath } from './fast-document.js';
import { ByteSink, wellFormed } from './fast-output.js';
import type { Redactor } from './redact/index.js';

export interface Documents {
  /** The document of one line. */
  of(line: string, id: string): string;
  /**
   * The one-pass path for the line `src[start, end)`, read where it stands in a chunk of many lines
   * (`src[end]`: its `\n` or `\r`): true when it wrote the document's UTF-8 into `sink`; false when the
   * line takes the general path (nothing written).
   */
  fastBytes(src: Buffer, start: number, end: number, id: DocumentId, sink: ByteSink): boolean;
  /** The general path alone. */
  general(line: string, id: string): string;
  /** The one-pass path alone (undefined: a line it leaves to the general path). */
  fast(line: string, id: string): string | undefined;
  /** Lines that were no JSON object; records the mapping failed on, shipped as a record that says so. */
  readonly counts: { unparsed: number; unmappable: number };
}

export function createDocuments(redact: Redactor, pino: PinoConfig, ecs: EcsOptions): Documents {
  const counts = { unparsed: 0, unmappable: 0 };
  const fastPath = createFastPath(redact, pino, ecs);
  const withId = (doc: Record<string, unknown>, id: string): string => {
    // event.id: the document's id everywhere (Elasticsearch _id, the Logstash dedup key, files).
    (doc.event as Record<string, unknown>).id = id;
    return JSON.stringify(doc);
  };
  const general = (line: string, id: string): string => {
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      record = undefined;
    }
    try {
      if (record !== null && typeof record === 'object')
        return withId(toEcs(redact(record as Record<string, unknown>), pino, ecs), id);
      counts.unparsed++;
      return withId(redact(unparsedLine(line, ecs)), id);
    } catch (error) {
      // No exception may end the stream: the record becomes one that says so, with its text, redacted.
      counts.unmappable++;
      const doc = redact(unparsedLine(record === undefined ? line : safeText(record), ecs));
      doc.error = { type: 'PgsightTransportError', message: `could not map a record: ${String(error)}` };
      return withId(doc, id);
    }
  };
  const fastBytes = (src: Buffer, start: number, end: number, id: DocumentId, sink: ByteSink) =>
    fastPath?.(src, start, end, id, sink) === true;
  // A line on its own: encoded, with a 0 after it (where the path stops reading). A lone surrogate would
  // not survive the encoding (JSON.stringify writes it escaped): such a line takes the general path.
  const line = new ByteSink();
  const document = new ByteSink();
  const fast = (text: string, id: string): string | undefined => {
    if (fastPath === undefined || !wellFormed(text)) return undefined;
    line.length = 0;
    line.text(text);
    line.byte(0);
    document.length = 0;
    if (!fastPath(line.buf, 0, line.length - 1, textId(id), document)) return undefined;
    return document.buf.toString('utf8', 0, document.length);
  };
  return { of: (text, id) => fast(text, id) ?? general(text, id), fastBytes, general, fast, counts };
}

/** A record's text for the record that replaces it, whatever it holds (cycles, BigInt). */
function safeText(record: unknown): string {
  try {
    const seen = new WeakSet<object>();
    return JSON.stringify(record, (_key, value: unknown) => {
      if (typeof value === 'bigint') return String(value);
      if (value !== null && typeof value === 'object') {
        if (seen.has(value)) return '[circular]';
        seen.add(value);
      }
      return value;
    });
  } catch {
    return '[a record that could not be read]';
  }
}
