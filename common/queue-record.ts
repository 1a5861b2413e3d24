/**
 * The disk queue's on-disk records (common/disk-queue.ts), one per line:
 *
 *   seg-<n>.v2.log   `<crc32, 8 hex> <seq> <entry>\n`: the CRC-32 (IEEE, as zlib and gzip) covers
 *                    `<seq> <entry>`; `seq` numbers the queue's entries, one more per entry
 *   seg-<n>.log      `<entry>\n`: written by hostpulse before the checksum (read, never appended to)
 *
 * A record whose checksum fails (flipped bytes, a torn write) is never handed out. The numbers tell
 * how many entries a damaged or truncated stretch held: the gap up to the next good record.
 */
import * as zlib from 'node:zlib';

/** node:zlib's crc32 (Node 20.15 and later), else the same CRC in JavaScript. */
const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

let table: Uint32Array | undefined;

function crc32js(data: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of data) crc = (table[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export const crc32: (data: Uint8Array) => number = native ? (data) => native(data) : crc32js;

/** The JavaScript CRC, for the test that holds it to zlib's. */
export const crc32Fallback = crc32js;

/** Segment file names: the version is in the name, so a segment is read as what it is. */
export const SEGMENT_FILE = /^seg-(\d{9})(\.v2)?\.log$/;
export const segmentFile = (n: number, legacy: boolean): string => `seg-${String(n).padStart(9, '0')}${legacy ? '' : '.v2'}.log`;

const hex = (n: number): string => n.toString(16).padStart(8, '0');

/** One record line, newline included. The entry must hold no newline. */
export function encodeRecord(seq: number, entry: string): string {
  const body = `${seq} ${entry}`;
  return `${hex(crc32(Buffer.from(body)))} ${body}\n`;
}

/** A record found in a chunk: bytes `start`…`end` (after its newline); `payload` from `payloadStart`. */
export interface QueueRecord {
  /** Offset just after the newline, within the chunk. */
  readonly end: number;
  readonly payloadStart: number;
  /** Undefined for a legacy record (it has none). */
  readonly seq: number | undefined;
  /** False: the checksum failed, the line cannot be trusted. */
  readonly ok: boolean;
}

const SPACE = 0x20;

/** Checks one v2 line (`start`…`end - 1`, the newline at `end - 1`). */
export function parseRecord(chunk: Buffer, start: number, end: number): QueueRecord {
  const bad: QueueRecord = { end, payloadStart: end, seq: undefined, ok: false };
  if (end - start < 12 || chunk[start + 8] !== SPACE) return bad;
  const digits = chunk.toString('latin1', start, start + 8);
  if (!/^[0-9a-f]{8}$/.test(digits)) return bad;
  if (crc32(chunk.subarray(start + 9, end - 1)) !== Number.parseInt(digits, 16)) return bad;
  const space = chunk.indexOf(SPACE, start + 9);
  if (space < 0 || space >= end - 1) return bad;
  const seq = Number(chunk.toString('latin1', start + 9, space));
  if (!Number.isSafeInteger(seq) || seq < 1) return bad;
  return { end, payloadStart: space + 1, seq, ok: true };
}

/** The cursor file: where reading resumes, and what was known to be on disk when it was saved. */
export interface Cursor {
  readonly segment: number;
  readonly offset: number;
  /** The number of the entry at the cursor (v2 segments), when known. */
  readonly seq?: number | undefined;
  /** The highest entry number fsync'ed when the cursor was saved. */
  readonly durable?: number | undefined;
}

export type CursorRead = { readonly state: 'absent' } | { readonly state: 'bad'; readonly why: string } | { readonly state: 'ok'; readonly cursor: Cursor };

const count = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function encodeCursor(c: Cursor): string {
  const fields = JSON.stringify({
    segment: c.segment,
    offset: c.offset,
    ...(c.seq !== undefined ? { seq: c.seq } : {}),
    ...(c.durable !== undefined ? { durable: c.durable } : {}),
  });
  return `${fields.slice(0, -1)},"crc":"${hex(crc32(Buffer.from(fields)))}"}`;
}

/** Reads cursor.json: this version's (with a checksum) or the previous one's (`{"segment","offset"}`). */
export function decodeCursor(text: string | undefined): CursorRead {
  if (text === undefined) return { state: 'absent' };
  let c: { segment?: unknown; offset?: unknown; seq?: unknown; durable?: unknown; crc?: unknown };
  try {
    c = JSON.parse(text) as typeof c;
  } catch {
    return { state: 'bad', why: 'not JSON' };
  }
  if (typeof c !== 'object' || c === null) return { state: 'bad', why: 'not an object' };
  if (!count(c.segment) || c.segment < 1 || !count(c.offset))
    return { state: 'bad', why: `segment ${String(c.segment)} offset ${String(c.offset)} out of range` };
  if (c.seq !== undefined && !count(c.seq)) return { state: 'bad', why: 'bad seq' };
  if (c.durable !== undefined && !count(c.durable)) return { state: 'bad', why: 'bad durable' };
  const cursor: Cursor = { segment: c.segment, offset: c.offset, seq: c.seq, durable: c.durable };
  if (c.crc !== undefined && encodeCursor(cursor) !== text.trim()) return { state: 'bad', why: 'checksum failed' };
  return { state: 'ok', cursor };
}
