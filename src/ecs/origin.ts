/**
 * Where a record's code location comes from: a V8 stack captured at the call (Error.captureStackTrace), read
 * only when a record is written, as ECS's `log.origin.*` and `code.stacktrace`.
 */
import { isAbsolute, relative as relativePath } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Origin {
  stack?: string;
}

/** Capture the stack above `above` (the pgsight function the app called), `frames` frames deep. */
export function captureCallSite(above: (...args: never[]) => unknown, frames: number): Origin {
  const origin: Origin = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = frames;
  Error.captureStackTrace(origin, above);
  Error.stackTraceLimit = limit;
  return origin;
}

// pgsight's own code (dist/ when installed, src/ under the tests), as URL and as path: frames from here,
// from Node internals and from pg are not where the app opened its transaction.
const OWN_CODE = new URL('..', import.meta.url);
const OWN_PREFIXES = [OWN_CODE.href, fileURLToPath(OWN_CODE)];
const PG_OR_NODE = /node:internal|node_modules[\\/]pg(-pool)?[\\/]/;
const DEPENDENCY = /node_modules[\\/]/;
const isAppFrame = (frame: string) =>
  !OWN_PREFIXES.some((prefix) => frame.includes(prefix)) && !PG_OR_NODE.test(frame);

/**
 * ECS's `log.origin.file.name` is a file name: an ESM frame's `file:///...` URL becomes a path, relative to the
 * app's working directory when the file is inside it.
 */
function fileName(location: string): string {
  let path = location;
  if (path.startsWith('file://'))
    try {
      path = fileURLToPath(path);
    } catch {
      return location;
    }
  if (!isAbsolute(path)) return path;
  const relative = relativePath(process.cwd(), path);
  return relative.startsWith('..') || isAbsolute(relative) ? path : relative;
}

/**
 * `log.origin.*` (ECS) and `code.stacktrace` for a record, from the first frame outside pgsight and pg; with
 * `beyondDependencies`, the first outside every package (an ORM's frames are not the app's call site).
 */
export function originFields(origin: Origin, beyondDependencies = false): Record<string, unknown> {
  const stack = origin.stack ?? '';
  const frames = stack.split('\n').slice(1);
  const frame =
    (beyondDependencies ? frames.find((f) => isAppFrame(f) && !DEPENDENCY.test(f)) : undefined) ??
    frames.find(isAppFrame) ??
    frames[0];
  const match = frame ? /at (?:(.+?) \()?(.+?):(\d+):(\d+)\)?$/.exec(frame.trim()) : null;
  const stackTrace = frames.map((f) => f.trim()).join('\n');
  if (!match) return { code: { stacktrace: stackTrace } };
  return {
    log: {
      origin: {
        file: { name: fileName(match[2] as string), line: Number(match[3]) },
        ...(match[1] ? { function: match[1] } : {}),
      },
    },
    code: { stacktrace: stackTrace },
  };
}
