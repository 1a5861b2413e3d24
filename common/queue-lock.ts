/**
 * The lock of a queue directory: `<dir>/lock` holds the pid of the process using it. Taken with an
 * atomic create (link(2) of a file already holding our pid: there is never a lock file without its
 * pid in it), so that of two processes started at the same instant exactly one gets it. A lock whose
 * process is gone is stale: it is moved aside by rename(2), which only one contender can do, and the
 * contenders race for a fresh create again. What was moved aside is checked to be the stale lock
 * that was read; a fresh lock moved by mistake is put back.
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class DiskQueueInUse extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A small file of the queue directory (the lock, the cursor), or undefined when it does not exist. */
export function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

const code = (error: unknown): string | undefined => (error as NodeJS.ErrnoException).code;

/** Takes `<dir>/lock` for this process, or throws DiskQueueInUse naming the process that holds it. */
export function acquireLock(dir: string): void {
  const path = join(dir, 'lock');
  const mine = String(process.pid);
  const tmp = join(dir, `lock.${process.pid}.tmp`);
  writeFileSync(tmp, mine);
  try {
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        linkSync(tmp, path);
        return;
      } catch (error) {
        if (code(error) !== 'EEXIST') throw error;
      }
      const held = readIfPresent(path);
      if (held === undefined) continue; // released meanwhile: try again
      const pid = Number(held);
      // Our own pid: a lock this process left (a queue reopened without close, as after a crash in a test).
      if (held === mine) return;
      if (Number.isSafeInteger(pid) && pid > 0 && alive(pid)) throw new DiskQueueInUse(`queue directory ${dir} is in use by process ${pid}`);
      // Stale (its process is gone) or unreadable: move it aside, if no one else did first.
      const aside = join(dir, `lock.${process.pid}.stale`);
      try {
        renameSync(path, aside);
      } catch (error) {
        if (code(error) === 'ENOENT') continue;
        throw error;
      }
      if (readIfPresent(aside) !== held) {
        // Another contender's fresh lock: give it back (it is still theirs).
        try {
          linkSync(aside, path);
        } catch {
          // someone holds it again; the next round sees who
        }
      }
      rmSync(aside, { force: true });
    }
    throw new DiskQueueInUse(`queue directory ${dir}: could not take its lock (contended)`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Releases the lock if it is still this process's. */
export function releaseLock(dir: string): void {
  const path = join(dir, 'lock');
  try {
    if (readFileSync(path, 'utf8') === String(process.pid)) rmSync(path, { force: true });
  } catch {
    // gone already
  }
}
