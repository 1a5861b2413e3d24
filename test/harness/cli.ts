/** Runs the built `hostpulse` CLI (dist/, as users run it) and reads its JSON log lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { AGENT_NODE_OPTIONS } from '../../cli/agent-runtime.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rememberBridgeSession } from './sessions.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export interface Running {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Parsed pino lines (from stdout, or stderr for --print). */
  readonly logs: () => LogLine[];
  readonly exited: Promise<number | null>;
  /** Resolves with the first log line matching, or fails after `timeoutMs` with everything printed. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends a signal to this process by PID, resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Environment for the CLI: only what the test passes, plus PATH; no HTTP server unless asked for,
 * and a fresh durable-queue directory per process unless given (so runs never replay each other).
 */
export function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HTTP_PORT: '0', QUEUE_DIR: mkdtempSync(join(tmpdir(), 'hostpulse-queue-')), ...env };
}

const running = new Set<ChildProcess>();

/** Kills (by PID) every CLI process a test started and left running, e.g. after a failed assertion. */
export async function stopAllCli(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** Node's options for a command, as shipped: the agent with those its launchers give it (deploy/, Compose). */
export const nodeOptionsFor = (args: readonly string[]): readonly string[] => (args[0] === 'agent' ? AGENT_NODE_OPTIONS : []);

export function runCli(args: readonly string[], env: Record<string, string> = {}): Running {
  const childEnv = cliEnv(env);
  const child = spawn(process.execPath, [...nodeOptionsFor(args), CLI, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  running.add(child);
  if (args[0] === 'bridge') rememberBridgeSession(childEnv, child);
  child.once('exit', () => running.delete(child));
  let out = '';
  let err = '';
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  const parse = (text: string): LogLine[] =>
    text
      .split('\n')
      .filter((l) => l.startsWith('{"level"'))
      .map((l) => JSON.parse(l) as LogLine);
  const check = (): void => {
    const lines = [...parse(out), ...parse(err)];
    for (const w of [...waiters]) {
      const hit = lines.find(w.match);
      if (hit) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(hit);
      }
    }
  };
  child.stdout?.on('data', (d: Buffer) => ((out += d.toString()), check()));
  child.stderr?.on('data', (d: Buffer) => ((err += d.toString()), check()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    logs: () => [...parse(out), ...parse(err)],
    exited,
    waitForLog(match, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; output:\n${out}\n${err}`)), timeoutMs);
        waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        check();
        void exited.then(() => setTimeout(() => reject(new Error(`process exited before the log line; output:\n${out}\n${err}`)), 50));
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs the CLI to completion. */
export async function execCli(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = runCli(args, env);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}
