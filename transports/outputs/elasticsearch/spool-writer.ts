/**
 * Writing to the disk spool. During an outage lines reach it in small groups (at most GROUP_MS later): one
 * write per group rather than one per line keeps a burst against a dead cluster cheap.
 */
import type { Spool, SpoolEntry } from '../../spool.js';
import type { OutputStats } from '../output.js';

const GROUP_MS = 50;
// Under V8's large-object size (128 KiB): a group's text dies in the young generation.
const GROUP_BYTES = 64 * 1024;

export class SpoolWriter {
  private group: SpoolEntry[] = [];
  private groupBytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly spool: Spool,
    private readonly stats: OutputStats,
  ) {}

  /** Spool entries now; what the spool's byte bound refuses is counted as dropped. */
  write(entries: readonly SpoolEntry[]): void {
    if (entries.length === 0) return;
    try {
      const dropped = this.spool.append(entries);
      this.stats.dropped += dropped;
      this.stats.spooled += entries.length - dropped;
    } catch {
      this.stats.dropped += entries.length;
    }
  }

  /** Spool one line with the next group. */
  later(id: string, json: string): void {
    this.group.push({ id, json });
    this.groupBytes += json.length;
    if (this.groupBytes >= GROUP_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), GROUP_MS);
  }

  /** Write the pending group now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const group = this.group;
    this.group = [];
    this.groupBytes = 0;
    this.write(group);
  }
}
