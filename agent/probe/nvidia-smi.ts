/**
 * nvidia-smi as one long-lived process in its loop mode (`--query-gpu=… --format=csv,noheader,nounits
 * -lms <interval>`): it prints one CSV line per GPU every interval, a block per interval, and keeps
 * NVML initialised between them. Starting it once per round instead costs a process start and an NVML
 * initialisation each time (hundreds of milliseconds of CPU on some drivers).
 *
 * `read()` gives the latest complete block (the text of its lines), or null: before the first one (it
 * waits a little for it), once the newest is older than STALE_INTERVALS intervals (a hung driver:
 * nothing rather than old values), and without nvidia-smi. A block is complete when every GPU of the
 * previous block has reported, when a GPU reports a second time (the next block began), or once no
 * line came for QUIET_MS.
 *
 * When it exits it is started again by a later read, after a backoff (1 s doubling to 5 min; from
 * 1 s again once a process has worked for two blocks), so no timer runs for it and nothing restarts
 * it once nobody reads (a machine whose GPU collector was switched off). One that stops printing is
 * ended after HUNG_INTERVALS intervals, and so started again. When it cannot be started at all
 * (ENOENT: nvidia-smi is not installed) it is never tried again. It is stopped with `stop()` and when
 * this process exits, and holds nothing that keeps this process alive. Were this process killed,
 * its next write fails (SIGPIPE) and it ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { backoffDelay } from '../../common/backoff.js';
import type { Logger } from '../../common/logger.js';
import { NVIDIA_SMI_FIELDS, type NvidiaSmiOutput } from './index.js';

/** A block older than this many intervals is not reported. */
export const STALE_INTERVALS = 3;
/** A process silent this many intervals (and FIRST_BLOCK_MS) is ended, to be started again. */
const HUNG_INTERVALS = 10;
/** Lines of one block come together: a pause this long ends one. */
const QUIET_MS = 250;
/** How long the first read waits for the first block (NVML's start can take seconds). */
const FIRST_BLOCK_MS = 8000;
/** Restarts back off from 1 s to 5 min, and start again from 1 s once the process delivered a block. */
const RESTART = { baseMs: 1000, maxMs: 300_000 } as const;
/** Lines longer than this are not nvidia-smi's CSV: dropped; a block has at most MAX_BLOCK_LINES. Nothing grows without bound. */
const MAX_LINE = 4096;
const MAX_BLOCK_LINES = 64;

export interface NvidiaSmiStreamOptions {
  /** The executable (nvidia-smi, or nvidia-smi.exe's full path on Windows). */
  readonly path: string;
  /** Time between blocks. */
  readonly intervalMs: number;
  readonly logger?: Logger | undefined;
  readonly now?: () => number;
}

/** The arguments of loop mode: the same query and format as one-shot, a block every `intervalMs`. */
export function nvidiaSmiLoopArgs(intervalMs: number): string[] {
  return [`--query-gpu=${NVIDIA_SMI_FIELDS.join(',')}`, '--format=csv,noheader,nounits', '-lms', String(Math.max(1, Math.round(intervalMs)))];
}

const BUS_ID = NVIDIA_SMI_FIELDS.indexOf('pci.bus_id');

/** The PCI bus id of a CSV line of the query (what tells GPUs apart), or undefined for another line. */
function busId(line: string): string | undefined {
  const fields = line.split(',');
  return fields.length === NVIDIA_SMI_FIELDS.length ? fields[BUS_ID]?.trim() : undefined;
}

interface Block {
  readonly lines: string[];
  readonly ids: Set<string>;
  lastAt: number;
}

export class NvidiaSmiStream {
  private child: ChildProcess | undefined;
  private installed = true;
  private stopped = false;
  private attempts = 0;
  /** No start before this time (backoff after an exit). */
  private retryAt = 0;
  private startedAt = 0;
  /** Blocks the running process printed. */
  private blocks = 0;
  private partial = '';
  private current: Block | undefined;
  private latest: Block | undefined;
  /** Waiting for the first block of a start. */
  private waiters: (() => void)[] = [];
  /** Processes started so far. */
  starts = 0;
  private readonly now: () => number;
  private readonly killOnExit = (): void => {
    this.child?.kill();
  };

  constructor(private readonly options: NvidiaSmiStreamOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The latest complete block, or null (none yet, stale, no nvidia-smi). Starts the process on first use. */
  async read(): Promise<NvidiaSmiOutput> {
    if (!this.installed || this.stopped) return null;
    if (!this.child && this.now() >= this.retryAt) this.start();
    // The first round must see the GPUs (a collector that finds nothing then is switched off).
    if (!this.latest && this.child) await this.firstBlock();
    this.settle();
    const now = this.now();
    const silentSince = this.blocks > 0 && this.latest ? this.latest.lastAt : this.startedAt;
    if (this.child && now - silentSince > Math.max(HUNG_INTERVALS * this.options.intervalMs, FIRST_BLOCK_MS)) {
      this.options.logger?.warn({ silentMs: now - silentSince }, 'nvidia-smi prints nothing; ending it');
      this.child.kill('SIGKILL');
    }
    const block = this.latest;
    if (!block || now - block.lastAt > STALE_INTERVALS * this.options.intervalMs) return null;
    return `${block.lines.join('\n')}\n`;
  }

  /** Ends the process (by its PID, through the ChildProcess) and never starts it again. */
  stop(): void {
    this.stopped = true;
    this.child?.kill();
    process.off('exit', this.killOnExit);
    this.release();
  }

  private start(): void {
    this.starts++;
    this.startedAt = this.now();
    this.blocks = 0;
    this.partial = '';
    this.current = undefined;
    let child: ChildProcess;
    try {
      child = spawn(this.options.path, nvidiaSmiLoopArgs(this.options.intervalMs), { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    } catch (error) {
      this.exited(undefined, error);
      return;
    }
    this.child = child;
    if (this.starts === 1) process.once('exit', this.killOnExit);
    let stderr = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      if (this.child === child) this.receive(chunk);
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-500);
    });
    child.once('error', (error) => this.exited(child, error));
    // On exit, not on close: a child of its own could hold the pipes open.
    child.once('exit', (code, signal) => this.exited(child, undefined, code ?? signal ?? undefined, stderr.trim()));
    // Nothing here keeps the agent running: not the process, not its pipes.
    child.unref();
    for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }

  private receive(chunk: string): void {
    const lines = (this.partial + chunk).split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    if (this.partial.length > MAX_LINE) this.partial = '';
    const now = this.now();
    for (const line of lines) {
      if (line.trim() === '' || line.length > MAX_LINE) continue;
      const id = busId(line);
      if (this.current && (now - this.current.lastAt >= QUIET_MS || (id !== undefined && this.current.ids.has(id)))) this.complete();
      const block = (this.current ??= { lines: [], ids: new Set(), lastAt: now });
      block.lines.push(line);
      if (id !== undefined) block.ids.add(id);
      block.lastAt = now;
      // Every GPU of the last block has reported: this one is whole.
      if ((this.latest && block.ids.size > 0 && block.ids.size >= this.latest.ids.size) || block.lines.length >= MAX_BLOCK_LINES) this.complete();
    }
    // The first block's end is known only from the pause after it: a reader waiting for it now waits for that pause.
    if (!this.latest) this.release();
  }

  /** A block quiet for QUIET_MS is complete. */
  private settle(): void {
    if (this.current && this.now() - this.current.lastAt >= QUIET_MS) this.complete();
  }

  private complete(): void {
    if (!this.current) return;
    this.latest = this.current;
    this.current = undefined;
    // Loop mode works: later exits back off from the start again.
    if (++this.blocks >= 2) this.attempts = 0;
    this.release();
  }

  private release(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once the first block is complete, the process ended, or FIRST_BLOCK_MS passed. */
  private async firstBlock(): Promise<void> {
    const deadline = this.now() + FIRST_BLOCK_MS;
    while (!this.latest && this.child && !this.stopped && this.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        // A block's end is known from a pause after its lines: look again then.
        timer = setTimeout(resolve, this.current ? QUIET_MS : Math.max(0, deadline - this.now()));
      });
      clearTimeout(timer);
      this.settle();
    }
  }

  private exited(child: ChildProcess | undefined, error?: unknown, code?: number | string, stderr?: string): void {
    if (child && this.child !== child) return;
    this.child = undefined;
    child?.stdout?.destroy();
    child?.stderr?.destroy();
    this.settle();
    this.release();
    if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      this.installed = false;
      this.options.logger?.debug({ path: this.options.path }, 'nvidia-smi not found: no NVIDIA GPU metrics');
      return;
    }
    if (this.stopped) return;
    const attempt = ++this.attempts;
    const delay = backoffDelay(attempt - 1, RESTART);
    this.retryAt = this.now() + delay;
    // The first exits, then every tenth: a driver that stays broken does not flood the log.
    if (attempt <= 3 || attempt % 10 === 0) {
      const reason = error instanceof Error ? error.message : stderr || `exit ${String(code)}`;
      this.options.logger?.warn({ reason, attempt, restartInMs: delay, starts: this.starts }, 'nvidia-smi ended; starting it again');
    }
  }
}
