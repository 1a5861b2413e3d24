/**
 * The agent publishing NVIDIA GPUs from one nvidia-smi in loop mode (a fake one on PATH, playing a
 * real 2× RTX 5090 workstation's recorded lines): every round from one process, started again when it
 * ends, stopped with the agent, and none left behind by an agent killed with SIGKILL.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../harness/cli.js';
import { alive, fakeNvidiaSmi } from '../harness/fake-nvidia-smi.js';
import { capture, waitFor } from '../harness/mqtt.js';
import { useBroker } from '../harness/servers.js';

describe('the agent with an NVIDIA GPU (a fake nvidia-smi on PATH)', () => {
  const servers = useBroker();

  it('publishes the GPUs every round from one nvidia-smi, started again when it ends, stopped with the agent', async () => {
    const fake = await fakeNvidiaSmi();
    const seen = await capture(servers.broker.url, 'sensors/gpu-rounds/gpu0_temp');
    // nvidia-smi ends after 6 blocks (6 s): the agent starts it again.
    const agent = runCli(['agent'], {
      ...fake.env({ FAKE_SMI_BLOCKS: '6' }),
      MQTT_URL: servers.broker.url,
      SENSORS_HOST: 'gpu-rounds',
      SAMPLE_INTERVAL: '1s',
      HA_DISCOVERY: 'false',
    });
    await waitFor('4 rounds with GPU figures', () => (seen.messages.length >= 4 ? true : undefined), 30_000);
    expect(fake.starts()).toHaveLength(1);
    await waitFor('nvidia-smi started again', () => (fake.starts().length >= 2 ? true : undefined), 30_000);
    const before = seen.messages.length;
    await waitFor('GPU figures after the restart', () => (seen.messages.length >= before + 3 ? true : undefined), 30_000);
    expect(seen.messages.map((m) => (JSON.parse(m.payload) as { value: number }).value).every((v) => v === 43)).toBe(true);
    // Many rounds, two starts: the one that ended and its replacement.
    expect(fake.starts()).toHaveLength(2);
    expect(agent.logs().filter((l) => l.msg === 'nvidia-smi ended; starting it again')).toHaveLength(1);
    expect(await agent.stop()).toBe(0);
    await waitFor('no nvidia-smi left', () => (fake.starts().every((pid) => !alive(pid)) ? true : undefined), 5000);
    await seen.close();
  }, 90_000);

  it('an agent killed with SIGKILL leaves no nvidia-smi running: its next write fails', async () => {
    const fake = await fakeNvidiaSmi();
    const seen = await capture(servers.broker.url, 'sensors/gpu-killed/gpu0_temp');
    const agent = runCli(['agent'], { ...fake.env(), MQTT_URL: servers.broker.url, SENSORS_HOST: 'gpu-killed', SAMPLE_INTERVAL: '1s', HA_DISCOVERY: 'false' });
    await waitFor('2 rounds with GPU figures', () => (seen.messages.length >= 2 ? true : undefined), 30_000);
    const [pid] = fake.starts();
    expect(alive(pid as number)).toBe(true);
    await agent.stop('SIGKILL');
    await waitFor('nvidia-smi ended', () => (alive(pid as number) ? undefined : true), 5000);
    await seen.close();
  }, 60_000);
});
