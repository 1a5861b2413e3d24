/**
 * NVIDIA GPUs without a process per round: one nvidia-smi in loop mode for the agent's whole life.
 * The test machine has no GPU, so a small `nvidia-smi` script on PATH plays a real card's part: it
 * checks the query and format the agent asks for, honours `-lms`, prints the CSV lines recorded from
 * a real 2× RTX 5090 workstation (test/fixtures/machines) once per interval, and notes each start in
 * a file. What is checked is what a user sees: the GPU metrics the agent prints and publishes, one
 * nvidia-smi for many rounds, a restart after it ends, nothing rather than old values when it hangs,
 * and no nvidia-smi left behind.
 */
import { describe, expect, it } from 'vitest';
import { NVIDIA_SMI_FIELDS } from '../../agent/probe/index.js';
import { NvidiaSmiStream, nvidiaSmiLoopArgs } from '../../agent/probe/nvidia-smi.js';
import { execCli } from '../harness/cli.js';
import { BLOCKS, alive, fakeNvidiaSmi } from '../harness/fake-nvidia-smi.js';
import { captureLogger } from '../harness/logs.js';
import { waitFor } from '../harness/mqtt.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A stream on the fake, its environment set for the fake's children (the stream spawns with this process's env). */
async function withEnv<T>(env: Record<string, string>, run: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await run();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('nvidia-smi loop mode (a fake nvidia-smi)', () => {
  it('asks for the same query and format as one-shot, in loop mode at the interval', () => {
    expect(nvidiaSmiLoopArgs(10_000)).toEqual([`--query-gpu=${NVIDIA_SMI_FIELDS.join(',')}`, '--format=csv,noheader,nounits', '-lms', '10000']);
  });

  it('gives the latest whole block, round after round, from one process', async () => {
    const fake = await fakeNvidiaSmi();
    await withEnv(fake.env(), async () => {
      const stream = new NvidiaSmiStream({ path: fake.path, intervalMs: 200 });
      const seen = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const block = await stream.read();
        expect(block, `read ${i}`).not.toBeNull();
        // Whole blocks only: both GPUs, each line as nvidia-smi printed it.
        expect(BLOCKS).toContain(block);
        seen.add(block as string);
        await sleep(150);
      }
      expect(seen.size).toBe(2); // it follows the stream
      expect(fake.starts()).toHaveLength(1);
      const [pid] = fake.starts();
      stream.stop();
      await waitFor('nvidia-smi ended', () => (alive(pid as number) ? undefined : true), 5000);
      expect(await stream.read()).toBeNull();
    });
  });

  it('starts it again when it ends, reports nothing rather than old values while it hangs, and ends one that hangs', async () => {
    const fake = await fakeNvidiaSmi();
    const { logger, lines } = captureLogger('nvidia-smi');
    await withEnv(fake.env({ FAKE_SMI_BLOCKS: '2' }), async () => {
      const stream = new NvidiaSmiStream({ path: fake.path, intervalMs: 200, logger });
      expect(await stream.read()).not.toBeNull();
      // Rounds go on reading: one of them starts it again, after a backoff of 1 to 2 s.
      await waitFor('a second nvidia-smi', async () => (await stream.read(), fake.starts().length >= 2 ? true : undefined), 10_000);
      expect(await waitFor('values again', async () => (await stream.read()) ?? undefined, 5000)).toMatch(/RTX 5090/);
      expect(lines.some((l) => l.msg === 'nvidia-smi ended; starting it again')).toBe(true);
      stream.stop();
    });
    const hung = await fakeNvidiaSmi();
    await withEnv(hung.env({ FAKE_SMI_HANG_AFTER: '1' }), async () => {
      const stream = new NvidiaSmiStream({ path: hung.path, intervalMs: 200 });
      expect(await stream.read()).toBe(BLOCKS[0]);
      await sleep(200 * 4);
      expect(await stream.read()).toBeNull();
      expect(hung.starts()).toHaveLength(1); // still running, only silent
      // Silent for long (8 s at least): ended, and started again by a later round.
      await waitFor('a new nvidia-smi after the silent one', async () => (await stream.read(), hung.starts().length >= 2 ? true : undefined), 20_000);
      expect(alive(hung.starts()[0] as number)).toBe(false);
      expect(await waitFor('values again', async () => (await stream.read()) ?? undefined, 5000)).toBe(BLOCKS[0]);
      stream.stop();
    });
  });

  it('without nvidia-smi reports nothing and never tries again', async () => {
    const stream = new NvidiaSmiStream({ path: '/nonexistent/nvidia-smi', intervalMs: 200 });
    expect(await stream.read()).toBeNull();
    expect(await stream.read()).toBeNull();
    expect(stream.starts).toBe(1);
  });
});

describe('the agent with an NVIDIA GPU (a fake nvidia-smi on PATH)', () => {
  it('`agent --print` shows each GPU from nvidia-smi, and leaves no nvidia-smi behind', async () => {
    const fake = await fakeNvidiaSmi();
    const { code, stdout } = await execCli(['agent', '--print', '--host', 'gpu-box'], fake.env());
    expect(code).toBe(0);
    const printed = new Map(
      stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { topic: string; payload: { value: number } })
        .map((m) => [m.topic, m.payload.value]),
    );
    // The first recorded block: GPU 0 at 43 °C drawing 105 W, idle; GPU 1 at 49 °C, 1 % busy.
    expect(printed.get('sensors/gpu-box/gpu0_temp')).toBe(43);
    expect(printed.get('sensors/gpu-box/gpu0_power')).toBe(105);
    expect(printed.get('sensors/gpu-box/gpu0_usage')).toBe(0);
    expect(printed.get('sensors/gpu-box/gpu1_temp')).toBe(49);
    expect(printed.get('sensors/gpu-box/gpu1_usage')).toBe(1);
    expect(printed.get('sensors/gpu-box/gpu1_mem_used')).toBe(28535 * 1024 * 1024);
    expect(fake.starts()).toHaveLength(1);
    await waitFor('nvidia-smi ended', () => (fake.starts().every((pid) => !alive(pid)) ? true : undefined), 5000);
  });
});
