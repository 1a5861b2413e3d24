/**
 * The agent as a whole process tree (child processes included) against Glances at the same
 * refresh, at 1 s and 10 s, one program at a time (two cores): CPU (% of one core and ms per
 * round), peak and mean RSS of the tree, and the child processes started per round.
 *
 * Environment:
 *   BENCH_AGENT_SECONDS  steady window at the 1 s interval, seconds (default 60); at 10 s it is
 *                        twice this (default 120 s). Whole rounds, at least 3.
 *
 * Each program runs twice per interval:
 *   1. measured: after a warm-up (the agent connected and published its first rounds, Glances
 *      printed its first refreshes), a window of whole rounds that starts half an interval after a
 *      round, so it holds exactly N of them. Start-up is excluded and reported in the notes (CPU
 *      of the tree until its first round). CPU is the tree's utime+stime, reaped children's
 *      cutime+cstime and live descendants' times (bench/tree.ts); RSS is summed over the tree
 *      every 250 ms; descendants are polled every 100 ms.
 *   2. counted, under `strace -f` (which slows the program, so it is never timed): the processes
 *      (fork/vfork/clone without CLONE_THREAD) started during 40 s of rounds (at least 3), with
 *      their command lines.
 *
 * The agent runs as shipped: `node --jitless --no-expose-wasm dist/cli/main.js agent` (AGENT_NODE_OPTIONS, as deploy/ starts it), durable queue in a temp dir, Home
 * Assistant discovery on, HTTP off; its rounds are seen on the broker (sensors/<host>/cpu_usage).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_NODE_OPTIONS } from '../cli/agent-runtime.js';
import { CLI, ROOT, cliEnv } from '../test/harness/cli.js';
import { connect } from '../test/harness/mqtt.js';
import { sleep, type BenchContext } from './context.js';
import type { Figure } from './report.js';
import { STRACE_ARGS, parseStrace, treeSnapshot, watchTree, type Started } from './tree.js';

const MB = 1024 * 1024;
const INTERVALS_S = [1, 10] as const;

/** A program under test: the root of the tree measured, and the epoch ms of its rounds so far. */
interface Subject {
  readonly pid: number;
  readonly rounds: number[];
  /** Tree CPU (µs) when its first round was seen. */
  startupCpuMicros(): number | undefined;
  /** undefined while it runs; why it ended otherwise. */
  failure(): string | undefined;
  stop(): Promise<void>;
}

interface Measured {
  readonly rounds: number;
  readonly cpuPercent: number;
  readonly msPerRound: number;
  readonly peakRssBytes: number;
  readonly meanRssBytes: number;
  /** Descendants seen by polling during the window. */
  readonly polledChildren: number;
  readonly startupCpuMs: number;
}

interface Counted {
  readonly rounds: number;
  readonly inWindow: Started[];
  readonly before: Started[];
}

export async function agentVsGlances(ctx: BenchContext): Promise<void> {
  const glances = toolVersion('glances');
  if (glances === undefined) throw new Error('glances is not installed: apt-get install -y glances');
  const strace = toolVersion('strace') !== undefined;
  if (!strace) ctx.log('agent-glances: strace not installed (apt-get install -y strace): children are polled, short-lived ones may be missed');
  for (const intervalS of INTERVALS_S) await compareAt(ctx, intervalS, glances, strace);
}

/** One interval: the agent, then Glances, measured; then both counted under strace. */
export async function compareAt(ctx: BenchContext, intervalS: number, glancesVersion: string, strace: boolean): Promise<void> {
  const intervalMs = intervalS * 1000;
  const rounds = windowRounds(intervalS);
  const agent = await measure(ctx, await startAgent(ctx, intervalS), intervalMs, rounds, `agent ${intervalS}s`);
  const glances = await measure(ctx, startGlances(intervalS), intervalMs, rounds, `glances ${intervalS}s`);
  // 40 s: Glances' ports plugin (refresh=30 in its packaged config) pings the gateway every 30 s.
  const countRounds = Math.min(rounds, Math.max(3, Math.ceil(40 / intervalS)));
  const agentCount = strace ? await count(ctx, (f) => startAgent(ctx, intervalS, f), intervalMs, countRounds, `agent ${intervalS}s`) : undefined;
  const glancesCount = strace
    ? await count(ctx, (f) => Promise.resolve(startGlances(intervalS, f)), intervalMs, countRounds, `glances ${intervalS}s`)
    : undefined;
  ctx.figures.push(...figures(intervalS, agent, glances, agentCount, glancesCount, glancesVersion));
}

/** BENCH_AGENT_SECONDS at 1 s, twice it at 10 s, in whole rounds. */
function windowRounds(intervalS: number): number {
  const base = Number(process.env['BENCH_AGENT_SECONDS'] ?? 60);
  if (!Number.isFinite(base) || base <= 0) throw new Error(`BENCH_AGENT_SECONDS: must be a positive number, got "${process.env['BENCH_AGENT_SECONDS']}"`);
  return Math.max(3, Math.round((base * (intervalS === 1 ? 1 : 2)) / intervalS));
}

/** First line of `tool --version` (strace: -V), or undefined when it is not installed. */
function toolVersion(tool: string): string | undefined {
  const r = spawnSync(tool, [tool === 'strace' ? '-V' : '--version'], { encoding: 'utf8', timeout: 30_000 });
  return r.error ? undefined : (r.stdout.split('\n')[0]?.trim() ?? tool);
}

async function measure(ctx: BenchContext, subject: Subject, intervalMs: number, rounds: number, what: string): Promise<Measured> {
  try {
    const from = await windowStart(subject, intervalMs);
    const start = treeSnapshot(subject.pid);
    const watch = watchTree(subject.pid);
    await sleep(rounds * intervalMs);
    const end = treeSnapshot(subject.pid);
    const to = Date.now();
    const { peakRssBytes, meanRssBytes, joined } = watch.stop();
    const done = subject.rounds.filter((t) => t >= from && t < to).length;
    const cpuMs = (end.cpuMicros - start.cpuMicros) / 1000;
    const startupCpuMs = (subject.startupCpuMicros() ?? Number.NaN) / 1000;
    const m: Measured = {
      rounds: done,
      cpuPercent: (cpuMs * 100) / (to - from),
      msPerRound: cpuMs / done,
      peakRssBytes,
      meanRssBytes,
      polledChildren: joined.length,
      startupCpuMs,
    };
    ctx.log(
      `${what}: ${done} rounds, CPU ${m.cpuPercent.toFixed(2)} % (${m.msPerRound.toFixed(1)} ms/round), RSS peak ${(m.peakRssBytes / MB).toFixed(1)} MiB mean ${(m.meanRssBytes / MB).toFixed(1)} MiB, ${m.polledChildren} children polled`,
    );
    return m;
  } finally {
    await subject.stop();
  }
}

async function count(ctx: BenchContext, start: (traceFile: string) => Promise<Subject>, intervalMs: number, rounds: number, what: string): Promise<Counted> {
  const file = join(mkdtempSync(join(tmpdir(), 'hostpulse-bench-strace-')), 'strace.log');
  const subject = await start(file);
  let from = 0;
  let to = 0;
  try {
    from = await windowStart(subject, intervalMs);
    await sleep(rounds * intervalMs);
    to = Date.now();
  } finally {
    await subject.stop();
  }
  const all = parseStrace(readFileSync(file, 'utf8'));
  const counted = {
    rounds: subject.rounds.filter((t) => t >= from && t < to).length,
    inWindow: all.filter((s) => s.at >= from && s.at < to),
    before: all.filter((s) => s.at < from),
  };
  ctx.log(
    `${what} under strace: ${counted.before.length} processes started before the window, ${counted.inWindow.length} in ${counted.rounds} rounds (${file})`,
  );
  return counted;
}

/**
 * Waits for the warm-up rounds, then until half an interval after a round: rounds do their work
 * at the start of their slot, so a window of N intervals from there holds exactly N rounds.
 */
async function windowStart(subject: Subject, intervalMs: number): Promise<number> {
  const warmup = Math.max(2, Math.ceil(5000 / intervalMs));
  const limitMs = 60_000 + (warmup + 1) * intervalMs;
  const deadline = Date.now() + limitMs;
  while (subject.rounds.length < warmup) {
    const failure = subject.failure();
    if (failure) throw new Error(failure);
    if (Date.now() > deadline) throw new Error(`${warmup} rounds expected within ${limitMs / 1000} s of start, saw ${subject.rounds.length}`);
    await sleep(100);
  }
  let from = (subject.rounds.at(-1) as number) + intervalMs / 2;
  while (from < Date.now() + 50) from += intervalMs;
  await sleep(from - Date.now());
  return Date.now();
}

/** The built agent, as shipped (durable queue in a temp dir, discovery on, HTTP off), optionally under strace. */
async function startAgent(ctx: BenchContext, intervalS: number, traceFile?: string): Promise<Subject> {
  const host = `bench-agent-${intervalS}s${traceFile ? '-strace' : ''}`;
  const rounds: number[] = [];
  let startup: number | undefined;
  let root = 0;
  const watcher = connect(ctx.broker.url, (_topic, payload) => {
    const ts = (JSON.parse(payload.toString()) as { ts?: unknown }).ts;
    if (typeof ts !== 'number') return;
    rounds.push(ts);
    startup ??= cpuOf(root);
  });
  await watcher.waitConnected(5000);
  await watcher.subscribe(`sensors/${host}/cpu_usage`, 1);
  const env = cliEnv({
    SAMPLE_INTERVAL: `${intervalS}s`,
    MQTT_URL: ctx.broker.url,
    SENSORS_HOST: host,
    QUEUE_DIR: mkdtempSync(join(tmpdir(), 'hostpulse-bench-agent-')),
  });
  const command = [process.execPath, ...AGENT_NODE_OPTIONS, CLI, 'agent'];
  const launched = traceFile ? launch('strace', [...STRACE_ARGS, '-o', traceFile, '--', ...command], env) : launch(command[0] as string, command.slice(1), env);
  root = launched.child.pid as number;
  return {
    pid: root,
    rounds,
    startupCpuMicros: () => startup,
    failure: launched.failure,
    stop: async () => {
      await launched.stop();
      await watcher.close(true);
    },
  };
}

/**
 * Glances with its packaged configuration (HOME is a temp dir, so no user config), no curses
 * UI: `--stdout now` runs the same loop as `-q` (every enabled plugin updated each refresh, the
 * exports, of which none is configured, then a sleep) and prints one short line per refresh,
 * which marks its rounds (here -q and --stdout now both took 1.1 % of a core at -t 1). Without the
 * curses UI it does less than a user watching it, so the comparison errs in Glances' favour.
 * --disable-check-update: no PyPI query at start.
 */
function startGlances(intervalS: number, traceFile?: string): Subject {
  const args = ['--stdout', 'now', '-t', String(intervalS), '--disable-check-update'];
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: mkdtempSync(join(tmpdir(), 'hostpulse-bench-glances-')) };
  const rounds: number[] = [];
  let startup: number | undefined;
  const onLine = (line: string): void => {
    if (!line.startsWith('now:')) return;
    rounds.push(Date.now());
    startup ??= cpuOf(root);
  };
  const launched = traceFile
    ? launch('strace', [...STRACE_ARGS, '-o', traceFile, '--', 'glances', ...args], env, onLine)
    : launch('glances', args, env, onLine);
  const root = launched.child.pid as number;
  return { pid: root, rounds, startupCpuMicros: () => startup, failure: launched.failure, stop: () => launched.stop() };
}

function cpuOf(pid: number): number | undefined {
  try {
    return treeSnapshot(pid).cpuMicros;
  } catch {
    return undefined;
  }
}

/** Programs started here and still running: killed by PID if the bench exits (Ctrl-C) meanwhile. */
const launched = new Set<ChildProcess>();
let exitHook = false;

interface Launched {
  readonly child: ChildProcess;
  failure(): string | undefined;
  stop(): Promise<void>;
}

/**
 * Spawns a program (its stdout lines to `onLine`); stop() sends SIGTERM to it, or under strace to
 * the traced program (strace then exits with it), by PID, and SIGKILL after 15 s.
 */
function launch(command: string, args: readonly string[], env: NodeJS.ProcessEnv, onLine: (line: string) => void = () => undefined): Launched {
  const child = spawn(command, args, { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  if (!exitHook) process.once('exit', () => [...launched].forEach((c) => c.pid !== undefined && tryKill(c.pid)));
  exitHook = true;
  launched.add(child);
  let partial = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    lines.forEach(onLine);
  });
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  child.once('error', (error) => (stderr += String(error)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => launched.delete(child));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const failure = (): string | undefined =>
    alive() ? undefined : `${command} exited (${child.exitCode ?? child.signalCode}): ${stderr.trim().split('\n').at(-1) ?? ''}`;
  return {
    child,
    failure,
    async stop() {
      if (!alive()) throw new Error(failure());
      const target = command === 'strace' ? (treeSnapshot(child.pid as number).pids[1] ?? (child.pid as number)) : (child.pid as number);
      process.kill(target, 'SIGTERM');
      const killed = setTimeout(() => [target, child.pid as number].forEach(tryKill), 15_000);
      await exited;
      clearTimeout(killed);
    },
  };
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function figures(
  intervalS: number,
  agent: Measured,
  glances: Measured,
  agentCount: Counted | undefined,
  glancesCount: Counted | undefined,
  glancesVersion: string,
): Figure[] {
  const n = `${intervalS}s`;
  const at = `at a ${intervalS} s interval`;
  const cpuNote = (m: Measured): string =>
    `${m.msPerRound.toFixed(1)} ms CPU per round over ${m.rounds} rounds; start-up (excluded): ${m.startupCpuMs.toFixed(0)} ms CPU until the first round`;
  const rssNote = (m: Measured): string => `mean ${(m.meanRssBytes / MB).toFixed(1)} MiB`;
  const perRound = (c: Counted | undefined, m: Measured): number => (c ? c.inWindow.length / c.rounds : m.polledChildren / m.rounds);
  const childNote = (c: Counted | undefined, m: Measured): string =>
    c
      ? `strace, ${c.rounds} rounds: ${summarize(c.inWindow)}; before the window (start-up, warm-up): ${summarize(c.before)}; polled in the measured window: ${m.polledChildren}`
      : `polled every 100 ms in the measured window (no strace): ${m.polledChildren}`;
  return [
    {
      id: `agent_cpu_${n}`,
      label: `agent CPU ${at} (process tree)`,
      value: agent.cpuPercent,
      unit: '% of a core',
      ref: `glances_cpu_${n}`,
      target: { op: '<=', bound: 1 },
      note: cpuNote(agent),
    },
    {
      id: `glances_cpu_${n}`,
      label: `Glances CPU ${at} (process tree)`,
      value: glances.cpuPercent,
      unit: '% of a core',
      note: `${cpuNote(glances)}; ${glancesVersion}, glances --stdout now -t ${intervalS}`,
    },
    {
      id: `agent_rss_${n}`,
      label: `agent peak RSS ${at} (process tree)`,
      value: agent.peakRssBytes / MB,
      unit: 'MiB',
      ref: `glances_rss_${n}`,
      target: { op: '<=', bound: 1 },
      note: rssNote(agent),
    },
    { id: `glances_rss_${n}`, label: `Glances peak RSS ${at} (process tree)`, value: glances.peakRssBytes / MB, unit: 'MiB', note: rssNote(glances) },
    {
      id: `agent_children_${n}`,
      label: `agent child processes started per round ${at}`,
      value: perRound(agentCount, agent),
      unit: 'processes/round',
      target: { op: '<=', bound: 0 },
      note: childNote(agentCount, agent),
    },
    {
      id: `glances_children_${n}`,
      label: `Glances child processes started per round ${at}`,
      value: perRound(glancesCount, glances),
      unit: 'processes/round',
      note: childNote(glancesCount, glances),
    },
  ];
}

/**
 * `56 (by the program itself: 2× lscpu, 1× sh -c …)`: how many were started, and the commands the
 * program ran itself (not their own children), most frequent first, cut to 50 characters, with
 * "|" escaped for the Markdown table.
 */
function summarize(started: readonly Started[]): string {
  if (started.length === 0) return 'none';
  const pids = new Set(started.map((s) => s.pid));
  const counts = new Map<string, number>();
  for (const s of started.filter((x) => !pids.has(x.parent))) {
    const c = (s.command ?? '(fork, no program)').replace(/\s+/g, ' ').slice(0, 50).replace(/\|/g, '\\|');
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const top = [...counts].sort((a, b) => b[1] - a[1]);
  const shown = top.slice(0, 8).map(([c, k]) => `${k}× ${c}`);
  return `${started.length} (by the program itself: ${[...shown, ...(top.length > 8 ? [`${top.length - 8} more`] : [])].join(', ')})`;
}
