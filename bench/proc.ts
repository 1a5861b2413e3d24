/**
 * A bench script (TypeScript) run as its own Node process that reports on stdout as JSON lines.
 * CPU time and memory of processes are read from /proc by test/harness/proc.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A JSON line a bench script prints on stdout. */
export interface ChildEvent {
  readonly event: string;
  readonly [key: string]: unknown;
}

export interface BenchChild {
  readonly child: ChildProcess;
  /** Every event printed so far. */
  readonly events: ChildEvent[];
  /** The latest event of that name, if any. */
  last(event: string): ChildEvent | undefined;
  /** Resolves with the first event (from now or earlier) that matches; fails after `timeoutMs`. */
  waitFor(event: string, timeoutMs: number, match?: (e: ChildEvent) => boolean): Promise<ChildEvent>;
  /** SIGTERM by PID (SIGKILL after 5 s); resolves once it exited. */
  stop(): Promise<void>;
}

const VITE_NODE = fileURLToPath(new URL('../node_modules/vite-node/vite-node.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Runs `bench/<script>` (TypeScript, through vite-node) with `options` as JSON in BENCH_CHILD. */
export function spawnScript(script: string, options: object): BenchChild {
  const child = spawn(process.execPath, [VITE_NODE, `bench/${script}`], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', BENCH_CHILD: JSON.stringify(options) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: ChildEvent[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('{"event"')) events.push(JSON.parse(line) as ChildEvent);
    for (const w of [...waiters]) w();
  });
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => (resolve(), [...waiters].forEach((w) => w()))));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    child,
    events,
    last: (event) => events.findLast((e) => e.event === event),
    waitFor(event, timeoutMs, match = () => true) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = events.find((e) => e.event === event && match(e));
          if (hit) return done(() => resolve(hit));
          if (!alive()) done(() => reject(new Error(`bench/${script} exited before "${event}":\n${stderr}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`bench/${script}: no "${event}" within ${timeoutMs} ms:\n${stderr}`))), timeoutMs);
        const done = (settle: () => void): void => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (!alive()) return;
      child.kill('SIGTERM');
      const killed = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killed);
    },
  };
}

/** For bench scripts: their options (and they exit if the bench that started them is gone). */
export function childOptions<T>(): T {
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.exit(1), 1000).unref();
  return JSON.parse(process.env['BENCH_CHILD'] ?? '{}') as T;
}

export function report(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}
