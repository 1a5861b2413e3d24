/**
 * The Dockerfile, exercised without Docker: its build stage's COPY and RUN steps replayed in a
 * clean copy of the repository, then the runtime stage's files alone must run the CLI.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../harness/cli.js';
import { tempDir } from '../harness/process.js';

interface Step {
  readonly stage: string;
  readonly instruction: string;
  readonly args: string;
}

/**
 * Instructions by stage, continuation lines joined. FROM lines as Docker reads them with no build
 * arguments given: `${NAME}` replaced by the default of an ARG declared before the first FROM.
 */
function parseDockerfile(text: string): Step[] {
  const steps: Step[] = [];
  const defaults = new Map<string, string>();
  let stage = '';
  const lines = text.replace(/\\\n\s*/g, ' ').split('\n');
  for (const line of lines) {
    const m = /^([A-Z]+)\s+(.*)$/.exec(line.trim());
    if (!m?.[1] || m[2] === undefined) continue;
    let args = m[2];
    if (m[1] === 'ARG' && stage === '') {
      const [name, value] = args.split('=', 2);
      if (name !== undefined && value !== undefined) defaults.set(name, value);
    }
    if (m[1] === 'FROM') {
      args = args.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced?: string, bare?: string) => defaults.get(braced ?? bare ?? '') ?? whole);
      stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? args;
    }
    steps.push({ stage, instruction: m[1], args });
  }
  return steps;
}

function sh(command: string, cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', command], { cwd, env, maxBuffer: 64 * 1024 * 1024, timeout: 240_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
const steps = parseDockerfile(dockerfile);
let work: string;
let build: string;
let runtime: string;

beforeAll(async () => {
  work = await tempDir('dockerfile');
  build = join(work, 'build');
  runtime = join(work, 'runtime');
  await mkdir(build);
  await mkdir(runtime);
  // The build stage, step by step, in a clean directory that holds only what it COPYs.
  for (const step of steps.filter((s) => s.stage === 'build')) {
    if (step.instruction === 'COPY') {
      const parts = step.args.split(/\s+/);
      const dest = parts.pop() as string;
      for (const source of parts) {
        const target = dest.endsWith('/') ? join(build, dest, source) : join(build, dest);
        await cp(join(ROOT, source), target, { recursive: true });
      }
    } else if (step.instruction === 'RUN') {
      const run = await sh(step.args, build, { ...process.env, npm_config_update_notifier: 'false' });
      expect(run.code, `RUN ${step.args}\n${run.stderr}`).toBe(0);
    }
  }
  // The runtime stage takes only what it copies from the build stage.
  for (const step of steps.filter((s) => s.stage === 'runtime' && s.instruction === 'COPY' && s.args.includes('--from=build'))) {
    const [source, dest] = step.args.split(/\s+/).filter((a) => !a.startsWith('--'));
    await cp(join(build, (source as string).replace(/^\/app\//, '')), join(runtime, dest as string), { recursive: true });
  }
}, 300_000);

afterAll(() => rm(work, { recursive: true, force: true }));

describe('Dockerfile', () => {
  it('follows the house rules: same slim base in both stages, non-root, exec-form command, healthcheck', () => {
    const bases = steps.filter((s) => s.instruction === 'FROM').map((s) => s.args.split(/\s+/)[0]);
    expect(bases).toEqual(['node:22-bookworm-slim', 'node:22-bookworm-slim']);
    // One build argument names the base of both stages (test/stack builds on a local stand-in).
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:22-bookworm-slim$/m);
    expect(dockerfile.match(/^FROM .*$/gm)).toEqual(['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE} AS runtime']);
    const runtimeSteps = steps.filter((s) => s.stage === 'runtime');
    expect(runtimeSteps.find((s) => s.instruction === 'USER')?.args).toBe('node');
    expect(runtimeSteps.find((s) => s.instruction === 'ENTRYPOINT')?.args).toMatch(/^\[/);
    expect(runtimeSteps.find((s) => s.instruction === 'CMD')?.args).toBe('["bridge"]');
    expect(runtimeSteps.find((s) => s.instruction === 'HEALTHCHECK')?.args).toContain('/healthz');
    expect(runtimeSteps.find((s) => s.instruction === 'ENV' && s.args.includes('NODE_ENV'))?.args).toBe('NODE_ENV=production');
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8');
    for (const entry of ['node_modules', 'dist', '.env', '.git', 'mosquitto/passwd']) expect(ignore.split('\n')).toContain(entry);
  });

  it('leaves only production dependencies and the build in the runtime files', () => {
    expect(existsSync(join(runtime, 'dist/cli/main.js'))).toBe(true);
    expect(existsSync(join(runtime, 'node_modules/mqtt'))).toBe(true);
    expect(existsSync(join(runtime, 'node_modules/typescript'))).toBe(false);
    expect(existsSync(join(runtime, 'node_modules/vitest'))).toBe(false);
    expect(existsSync(join(runtime, 'protocol'))).toBe(false);
  });

  it('runs the CLI from the runtime files alone, as the image would', async () => {
    const env = { PATH: process.env['PATH'] ?? '', NODE_ENV: 'production', HTTP_PORT: '0' };
    const help = await sh('node dist/cli/main.js --help', runtime, env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: hostpulse <command>');
    const bridge = await sh('node dist/cli/main.js bridge', runtime, env);
    expect(bridge.code).toBe(2);
    expect(bridge.stderr).toContain('INFLUX_URL: is required');
    const agent = await sh('node dist/cli/main.js agent --print --host image-test', runtime, env);
    expect(agent.code, agent.stderr).toBe(0);
    expect(agent.stdout).toContain('"topic":"sensors/image-test/cpu_usage"');
  });
});
