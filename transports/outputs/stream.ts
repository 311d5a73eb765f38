/**
 * stdout, stderr and file outputs: NDJSON through sonic-boom (pino's own destination), which writes whole
 * lines straight to the file descriptor from the worker. The file output appends, and follows rotation:
 * every second it compares the path's inode with the open file's and reopens when they differ (renamed or
 * removed by logrotate), since worker threads cannot receive SIGHUP.
 */
import { fstat, stat } from 'node:fs';
import sonicBoom from 'sonic-boom';

// sonic-boom is CommonJS (module.exports = SonicBoom); its typings describe the class as a named export.
const SonicBoom = sonicBoom as unknown as typeof import('sonic-boom').SonicBoom;

import { emptyStats, type Output } from './output.js';

export interface StreamOutputOptions {
  type: 'stdout' | 'stderr' | 'file';
  /** For `file`: the path; its directory is created. */
  path?: string;
  /** For `file`: how often rotation is checked (ms). @default 1000 */
  rotationCheckMs?: number;
}

export function createStreamOutput(options: StreamOutputOptions): Output {
  const stats = emptyStats();
  const sonic =
    options.type === 'file'
      ? new SonicBoom({ dest: options.path as string, append: true, mkdir: true, sync: false })
      : new SonicBoom({ fd: options.type === 'stdout' ? 1 : 2, sync: false });
  let failed = false;
  // Bytes handed to sonic-boom and bytes it reports written: flush() waits for the two to meet. sonic-boom's
  // own flush(cb) calls back at once when minLength is 0 (its default), even with a write in flight.
  let accepted = 0;
  let written = 0;
  let waiters: (() => void)[] = [];
  const settle = () => {
    const ready = waiters;
    waiters = [];
    for (const resolve of ready) resolve();
  };
  sonic.on('write', (n: number) => {
    written += n;
    if (written >= accepted) settle();
  });
  sonic.on('error', () => {
    failed = true; // reported in the stats (dropped); never rethrown into pino's worker
    settle();
  });

  let rotation: NodeJS.Timeout | undefined;
  if (options.type === 'file') {
    rotation = setInterval(() => {
      const fd = (sonic as unknown as { fd: number }).fd;
      if (fd < 0) return;
      stat(options.path as string, (err, onDisk) => {
        fstat(fd, (err2, open) => {
          if (err2) return;
          if (err || onDisk.ino !== open.ino || onDisk.dev !== open.dev) {
            try {
              sonic.reopen();
            } catch {
              failed = true;
            }
          }
        });
      });
    }, options.rotationCheckMs ?? 1000).unref();
  }

  const flush = (deadlineMs: number) =>
    new Promise<void>((resolve) => {
      if (failed || written >= accepted) return resolve();
      const timer = setTimeout(resolve, deadlineMs);
      waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });

  return {
    name: options.type === 'file' ? `file ${options.path}` : options.type,
    stats,
    write(_id, json) {
      if (failed) {
        stats.dropped++;
        return;
      }
      const line = `${json}\n`;
      accepted += Buffer.byteLength(line);
      sonic.write(line);
      stats.shipped++;
    },
    flush,
    async close(deadlineMs) {
      if (rotation) clearInterval(rotation);
      await flush(deadlineMs);
      await new Promise<void>((resolve) => {
        sonic.once('close', () => resolve());
        sonic.once('error', () => resolve());
        try {
          sonic.end();
        } catch {
          resolve();
        }
      });
    },
  };
}
