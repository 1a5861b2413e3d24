/** Starting and stopping the test's own server processes, by PID only. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Ports handed out by this process, never handed out twice. */
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Ports for this worker: test files run in parallel workers (vitest's VITEST_POOL_ID, 1, 2, …), each
 * drawing from its own slice, so that two workers never pick the same port between its check and its
 * bind. Below the kernel's ephemeral range (32768–60999 on Linux), where the outgoing connections of
 * the tests' own clients take their ports: a port from that range, free when checked, could be taken
 * by one of them before the server binds it ("Address already in use").
 */
const SLICE = 2_000;
const worker = Math.max(1, Number(process.env['VITEST_POOL_ID'] ?? 1) || 1);
const first = 20_000 + ((worker - 1) % 6) * SLICE;

/** A free TCP port on 127.0.0.1 for a server a test starts; never the same port twice in one process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = first + Math.floor(Math.random() * SLICE);
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port between ${first} and ${first + SLICE}`);
}

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `hostpulse-${prefix}-`));
}

export interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly dir: string;
  /** Everything the process printed, for assertions and failure messages. */
  output(): string;
  /** Stops the process (SIGTERM, then SIGKILL after 5 s), keeping its directory. */
  halt(): Promise<void>;
  /** Stops the process and removes its directory. */
  stop(): Promise<void>;
}

/** Spawns a server and waits until `ready()` resolves true (polled), or fails with its output. */
export async function startServer(
  name: string,
  command: string,
  args: readonly string[],
  dir: string,
  ready: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<Server> {
  const child = spawn(command, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const server: Server = {
    name,
    child,
    dir,
    output: () => output,
    async halt() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killed = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killed);
      }
    },
    async stop() {
      await server.halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (await ready().catch(() => false)) return server;
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.stop();
  throw new Error(`${name} did not start within ${timeoutMs} ms:\n${output}`);
}

/** Whether something accepts TCP connections on 127.0.0.1:port (a server's readiness probe). */
export function acceptsTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
