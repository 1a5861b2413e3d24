/**
 * A Docker engine of the test's own: Debian's dockerd, started as root on a fresh data root in a temp
 * dir (vfs, no iptables, no default bridge), reached through its own socket, stopped by its PID.
 * Nothing of the machine's own Docker (if any) is used or touched.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './process.js';

/** The docker.io client. Not `docker` from PATH: on our machines /usr/local/bin/docker is an unrelated client. */
export const DOCKER = '/usr/bin/docker';
export const DOCKER_COMPOSE = '/usr/bin/docker-compose';
const DOCKERD = ['/usr/sbin/dockerd', '/usr/bin/dockerd'];

export interface Exec {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly timeoutMs?: number;
  /** A file to read as standard input. */
  readonly stdin?: string;
}

/** Runs a command to its end; never rejects: a failure is a non-zero code (124 on timeout) with the output. */
export function exec(command: string, args: readonly string[], options: ExecOptions = {}): Promise<Exec> {
  return new Promise((resolve) => {
    const input = options.stdin === undefined ? 'ignore' : openSync(options.stdin, 'r');
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: [input, 'pipe', 'pipe'] });
    if (typeof input === 'number') closeSync(input);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), options.timeoutMs ?? 600_000);
    child.once('error', (error) => (clearTimeout(timer), resolve({ code: 127, stdout, stderr: `${stderr}${error.message}\n` })));
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? 124 : (code ?? 1), stdout, stderr: timedOut ? `${stderr}\n(killed after ${options.timeoutMs} ms)` : stderr });
    });
  });
}

/** Why this machine cannot run the engine, or undefined when it can. */
export function engineProblem(): string | undefined {
  const missing = [DOCKER, DOCKER_COMPOSE, '/usr/sbin/debootstrap'].filter((p) => !existsSync(p));
  if (!DOCKERD.some((p) => existsSync(p))) missing.unshift('dockerd');
  if (missing.length > 0) return `missing ${missing.join(', ')} (apt-get install docker.io docker-compose debootstrap)`;
  if (process.getuid?.() !== 0) return 'dockerd and debootstrap need root; this test runs as a non-root user';
  return undefined;
}

export interface Engine {
  readonly dir: string;
  /** The environment for clients: DOCKER_HOST on this engine's socket. */
  readonly env: NodeJS.ProcessEnv;
  docker(args: readonly string[], options?: ExecOptions): Promise<Exec>;
  /** The daemon's own log, for failure messages. */
  log(): string;
  /** Stops dockerd (SIGTERM, then SIGKILL after a bound) and removes everything it kept. */
  stop(): Promise<void>;
}

export async function startEngine(timeoutMs = 60_000): Promise<Engine> {
  const problem = engineProblem();
  if (problem) throw new Error(`cannot start a Docker engine: ${problem}`);
  // The large trees (data root, log) in the run's temp dir; the daemon's sockets (its own, containerd's
  // under the exec root) in a short one directly in /tmp: a unix socket path stops at 108 bytes.
  const dir = await tempDir('docker');
  const run = await mkdtemp('/tmp/hpd-');
  const socket = join(run, 'docker.sock');
  const logFile = join(dir, 'dockerd.log');
  const dockerd = DOCKERD.find((p) => existsSync(p)) as string;
  const args = [
    '--storage-driver',
    'vfs',
    '--data-root',
    join(dir, 'root'),
    '--exec-root',
    join(run, 'exec'),
    '-H',
    `unix://${socket}`,
    '--pidfile',
    join(run, 'docker.pid'),
    '--iptables=false',
    '--bridge=none',
  ];
  // Its output goes to a file, not a pipe: the daemon must not depend on this process to write its log.
  const out = openSync(logFile, 'a');
  const child = spawn(dockerd, args, { stdio: ['ignore', out, out] });
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${socket}` };
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const engine: Engine = {
    dir,
    env,
    docker: (a, options = {}) => exec(DOCKER, a, { ...options, env: { ...env, ...options.env } }),
    log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        // dockerd stops its containers first (10 s each, in parallel), then containerd.
        const killed = setTimeout(() => child.kill('SIGKILL'), 45_000);
        await exited;
        clearTimeout(killed);
      }
      await reapLeftovers(join(run, 'exec'));
      await removeTree(run);
      await removeTree(dir);
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const version = await engine.docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
    if (version.code === 0) return engine;
    if (child.exitCode !== null || Date.now() > deadline) {
      const why = child.exitCode !== null ? `exited with ${child.exitCode}` : `did not answer within ${timeoutMs} ms`;
      const tail = log().slice(-4000); // before stop(), which removes the log with the rest
      await engine.stop();
      throw new Error(`dockerd ${why} (${dockerd} ${args.join(' ')}):\n${version.stderr}\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Mount points at or below `dir`, deepest first (from this process's mount table). */
function mountsUnder(dir: string): string[] {
  const unescapeOctal = (s: string): string => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => unescapeOctal(line.split(' ')[4] ?? ''))
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Removes a tree the daemon (or debootstrap) used: vfs leaves large trees, and a daemon that was
 * killed can leave its data root, network namespaces and container shm mounted under it.
 */
export async function removeTree(dir: string): Promise<void> {
  for (const point of mountsUnder(dir)) await exec('umount', ['-l', point], { timeoutMs: 30_000 });
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * After a daemon that had to be killed: its containers (through runc's state of this engine only), then
 * the containerd and shims it started, found by this engine's own paths on their command lines.
 */
async function reapLeftovers(execRoot: string): Promise<void> {
  const runcRoot = join(execRoot, 'runtime-runc', 'moby');
  if (existsSync(runcRoot)) {
    const list = await exec('runc', ['--root', runcRoot, 'list', '-q'], { timeoutMs: 10_000 });
    for (const id of list.stdout.split('\n').filter(Boolean)) await exec('runc', ['--root', runcRoot, 'delete', '--force', id], { timeoutMs: 10_000 });
  }
  const containerd = join(execRoot, 'containerd');
  for (const pid of [...processesNaming(join(containerd, 'containerd.sock')), ...processesNaming(join(containerd, 'containerd.toml'))]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** PIDs of processes with `path` as one of their arguments. */
function processesNaming(path: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(path);
      } catch {
        return false;
      }
    })
    .map(Number);
}
