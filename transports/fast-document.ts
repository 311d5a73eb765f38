/**
 * The one-pass path: a serialized pino line straight to the JSON of its ECS document, without `JSON.parse`
 * and `JSON.stringify`, for the lines it models; false for any other line, which then takes the general
 * path (parse → redact → toEcs → stringify). Both give the same bytes; test/transport-differential.test.ts
 * runs random and hostile records through the two.
 *
 * Modelled: what pino writes. An object without whitespace between tokens, no raw control character, keys
 * unique per object, unescaped, not array indexes, within the redaction bounds; at the top level no dotted key
 * and no key the mapping treats apart beyond pino's own (`level`, `time`, `pid`, `hostname`, `name`, the
 * message key, `trace_id`, `span_id`): a line with `err`, `req`, `service`, `labels`... falls back. Values are
 * copied as they stand when the redaction engine's decisions (`Redactor.decisions`) say the walk would leave
 * them so, and replaced by what the walk would make of them otherwise; a number not in the form
 * `JSON.stringify` writes is re-written in it.
 *
 * The line is read as UTF-8 bytes and the document written as bytes (fast-output.ts): what stays as it
 * stands is copied byte for byte, the head's fixed pieces are encoded once, and no string is made per document
 * (Elasticsearch's output has it written into its `_bulk` body; an output of strings decodes it). The values
 * are read in fast-values.ts, and those a line repeats from the one before are recognized in fast-memo.ts.
 *
 * Hand-written: the cost it removes is the parse and stringify themselves, which no JSON library avoids.
 */
import { ECS_VERSION } from '../src/ecs/version.js';
import type { DocumentId } from './document-id.js';
import { type EcsOptions, millisOf, type PinoConfig, secondPrefixOf } from './ecs.js';
import {
  createKeyTable,
  DROPPED,
  FALLBACK,
  HOSTNAME,
  LEVEL,
  MESSAGE,
  NAME,
  PID,
  REST,
  REST_OBJECT,
  SECRET,
  SPAN_ID,
  TIME,
  TRACE_ID,
} from './fast-keys.js';
import type { ByteSink } from './fast-output.js';
import { b, begin, COMMA, finish, LBRACE, lineEnd, RBRACE } from './fast-tokens.js';
import {
  endRuns,
  entry,
  FAILED,
  NUMBER,
  RANGE,
  restMember,
  scalarEnd,
  scalarJson,
  scalarNumber,
  scalarStart,
  startLine,
  topKey,
  topScalar,
} from './fast-values.js';
import type { Redactor } from './redact/index.js';

/**
 * Writes the document of the line `src[start, end)` with `id` into `sink`; false when it wrote nothing: take
 * the general path. `src[end]` must be a byte no token starts with (the line's `\n` or `\r`, or a 0 put
 * there): the reading stops at it.
 */
export type FastPath = (src: Buffer, start: number, end: number, id: DocumentId, sink: ByteSink) => boolean;

/**
 * The members are written into the sink the document goes to `GAP` bytes past where it starts, and moved
 * next to the head once that is written: within one buffer, no copy between buffers, no view made for one.
 */
const GAP = 512;
/** Where the document starts in the sink. */
let base = 0;

// The head's members that hold a string of the line, written in toEcs's order whatever the record's: where
// each stands in the line (-1: absent), or its JSON when the walk changed it.
const SLOTS = [MESSAGE, HOSTNAME, NAME, TRACE_ID, SPAN_ID];
const slotOf = new Int8Array(16).fill(-1);
SLOTS.forEach((kind, i) => {
  slotOf[kind] = i;
});
const slotFrom = new Int32Array(SLOTS.length);
const slotTo = new Int32Array(SLOTS.length);
const slotJson: string[] = SLOTS.map(() => '');
const encoded = (text: string) => Buffer.from(text);
const SLOT_OPEN = [
  ',"message":',
  ',"host":{"hostname":',
  ',"log":{"logger":',
  ',"trace":{"id":',
  ',"span":{"id":',
].map(encoded);
const SLOT_CLOSE = ['', '}', '}', '}', '}'].map(encoded);
/**
 * `{"@timestamp":"<time>","log.level":` in one piece: the time's text to the second is written into it once
 * a second, its milliseconds once a line.
 */
const HEAD = encoded('{"@timestamp":"YYYY-MM-DDTHH:MM:SS.000Z","log.level":');
const MILLIS_AT = HEAD.indexOf('000Z');
let headSecond = -1;
function head(out: ByteSink, ms: number): void {
  const second = Math.floor(ms / 1000);
  if (second !== headSecond) {
    HEAD.write(secondPrefixOf(ms), MILLIS_AT - 20, 'latin1');
    headSecond = second;
  }
  const m = ms - second * 1000;
  HEAD[MILLIS_AT] = 48 + Math.floor(m / 100);
  HEAD[MILLIS_AT + 1] = 48 + (Math.floor(m / 10) % 10);
  HEAD[MILLIS_AT + 2] = 48 + (m % 10);
  out.bytes(HEAD);
}
let pidNumber = Number.NaN;
let pidText = '';
const ID_CLOSE = encoded('"}');
const PID_OPEN = encoded(',"process":{"pid":');

/** The one-pass path for one transport; undefined when its options are none it models. */
export function createFastPath(redactor: Redactor, pino: PinoConfig, ecs: EcsOptions): FastPath | undefined {
  const decisions = redactor.decisions;
  const table = createKeyTable(decisions, pino);
  if (table === undefined) return undefined;
  const labels = new Map<number, Buffer>();
  const levelJson = (level: number): Buffer => {
    let json = labels.get(level);
    if (json === undefined) {
      json = encoded(JSON.stringify(pino.levels.labels[level] ?? String(level)));
      if (labels.size < 1000) labels.set(level, json);
    }
    return json;
  };
  const service: Record<string, string> = { name: ecs.service.name };
  if (ecs.service.version) service.version = ecs.service.version;
  if (ecs.service.environment) service.environment = ecs.service.environment;
  const middle = encoded(
    `,"ecs.version":${JSON.stringify(ECS_VERSION)},"service":${JSON.stringify(service)},"event":{"dataset":${JSON.stringify(ecs.dataset)},"id":"`,
  );
  const censor = encoded(JSON.stringify(decisions.censor));

  function document(from: number, id: DocumentId, out: ByteSink): boolean {
    let ms = -1;
    let level: Buffer | undefined;
    let pid = '';
    slotFrom.fill(-1);
    // Members copied from the line run on (commas included) until one the head takes: a few pieces a line.
    let runEnd = -1;
    let i = from + 1;
    for (;;) {
      const at = topKey(i);
      if (at < 0) return false;
      const { key, info } = entry;
      const kind = info & 15;
      const secret = (info & SECRET) !== 0;
      if (kind === REST || kind === REST_OBJECT) {
        if (kind === REST_OBJECT && b[at] !== LBRACE) return false;
        // An ECS field set's value censored whole would no longer be an object: the general path moves it.
        if (kind === REST_OBJECT && secret) return false;
        i = restMember(i, at, runEnd, key, secret);
        if (i < 0) return false;
        runEnd = i;
      } else if (kind === FALLBACK) return false;
      else {
        const got = topScalar(at, kind, key, secret);
        if (got === FAILED) return false;
        i = scalarEnd;
        if (kind === TIME || kind === LEVEL || kind === PID) {
          if (got !== NUMBER) return false;
          if (kind === TIME) ms = millisOf(scalarNumber);
          else if (kind === LEVEL) level = levelJson(scalarNumber);
          else {
            // A process logs its one pid: its text is made once.
            if (scalarNumber !== pidNumber) {
              pidNumber = scalarNumber;
              pidText = String(scalarNumber);
            }
            pid = pidText;
          }
          if (kind === TIME && ms === -1) return false;
        } else if (kind !== DROPPED) {
          if (got === NUMBER) return false;
          const slot = slotOf[kind] as number;
          slotFrom[slot] = got === RANGE ? scalarStart : 0;
          slotTo[slot] = got === RANGE ? scalarEnd : 0;
          slotJson[slot] = got === RANGE ? '' : scalarJson;
        }
      }
      const c = b[i];
      if (c === COMMA) i++;
      else if (c === RBRACE && i + 1 === lineEnd) break;
      else return false;
    }
    if (ms === -1 || level === undefined) return false;
    endRuns(runEnd);
    // The head's bytes, at most; past the gap, the members are moved on to make room for it.
    let headBytes = HEAD.length + level.length + middle.length + id.maxBytes + 64;
    for (let slot = 0; slot < SLOTS.length; slot++)
      if (slotFrom[slot] !== -1)
        headBytes +=
          32 +
          (slotJson[slot] === ''
            ? (slotTo[slot] as number) - (slotFrom[slot] as number)
            : 3 * (slotJson[slot] as string).length);
    let membersAt = base + GAP;
    const membersEnd = out.length;
    out.room(headBytes + 256);
    if (headBytes > GAP) {
      out.buf.copyWithin(base + headBytes, membersAt, membersEnd);
      membersAt = base + headBytes;
    }
    const members = membersEnd - (base + GAP);
    // toEcs's order: @timestamp, log.level, message, ecs.version, service, event, process..span, the rest.
    out.length = base;
    head(out, ms);
    out.bytes(level);
    for (let slot = 0; slot < SLOTS.length; slot++) {
      if (slot === 1) {
        out.bytes(middle);
        out.room(id.maxBytes);
        out.length = id.write(out.buf, out.length);
        out.bytes(ID_CLOSE);
        if (pid !== '') {
          out.bytes(PID_OPEN);
          out.text(pid);
          out.byte(RBRACE);
        }
      }
      if (slotFrom[slot] === -1) continue;
      out.bytes(SLOT_OPEN[slot] as Buffer);
      if (slotJson[slot] === '') out.copy(b, slotFrom[slot] as number, slotTo[slot] as number);
      else out.text(slotJson[slot] as string);
      out.bytes(SLOT_CLOSE[slot] as Buffer);
    }
    out.buf.copyWithin(out.length, membersAt, membersAt + members);
    out.length += members;
    out.byte(RBRACE);
    return true;
  }

  return (src: Buffer, start: number, end: number, id: DocumentId, out: ByteSink): boolean => {
    if (src[start] !== LBRACE || src[start + 1] === RBRACE || end - start < 2) return false;
    begin(src, end);
    base = out.length;
    out.room(GAP + 2 * (end - start));
    out.length = base + GAP;
    startLine(decisions, redactor, censor, table, out, start);
    let done = false;
    try {
      done = document(start, id, out);
    } catch {
      // a bad escape: the general path says what the line is
    } finally {
      finish();
      for (let slot = 0; slot < SLOTS.length; slot++) slotJson[slot] = '';
    }
    if (!done) out.length = base;
    return done;
  };
}
