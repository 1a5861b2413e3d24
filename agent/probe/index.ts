/**
 * What the agent reads from the machine, as systeminformation returns it (only the fields the
 * collectors use are typed). The real probe is `system.ts`; `ReplayProbe` plays back a
 * recording made with `hostpulse agent --record`, so collectors are tested on data from real
 * machines (GPUs, batteries, sensors) that the test machine lacks.
 */
import { readFile } from 'node:fs/promises';

export interface CpuLoad {
  readonly currentLoad: number;
}
export interface CpuTemperature {
  readonly main: number | null;
  readonly cores: readonly (number | null)[];
  readonly max: number | null;
}
export interface Memory {
  readonly total: number;
  readonly available: number;
  readonly swaptotal: number;
  readonly swapused: number;
}
export interface Filesystem {
  readonly fs: string;
  readonly type: string;
  readonly size: number;
  readonly used: number;
  readonly available: number;
  readonly use: number | null;
  readonly mount: string;
}
export interface NetworkStat {
  readonly iface: string;
  readonly operstate?: string;
  readonly rx_bytes: number;
  readonly tx_bytes: number;
}
export interface GpuController {
  readonly vendor?: string;
  readonly model?: string;
  readonly temperatureGpu?: number | null;
  readonly utilizationGpu?: number | null;
  readonly memoryTotal?: number | null;
  readonly memoryUsed?: number | null;
  readonly powerDraw?: number | null;
  readonly fanSpeed?: number | null;
}
export interface Graphics {
  readonly controllers: readonly GpuController[];
}
export interface Battery {
  readonly hasBattery: boolean;
  readonly percent: number | null;
  readonly isCharging: boolean;
}
export interface TimeInfo {
  readonly uptime: number;
}
export type LoadAverage = readonly [number, number, number] | null;
/**
 * Raw output of `nvidia-smi --query-gpu=<NVIDIA_SMI_FIELDS> --format=csv,noheader,nounits` (one line
 * per GPU: the latest block of its loop mode, agent/probe/nvidia-smi.ts), or null without nvidia-smi. Read
 * directly because systeminformation's graphics() drops every zero it gets from nvidia-smi (an idle
 * GPU would report no utilisation at all) and runs lspci and nvidia-smi besides on every call.
 */
export type NvidiaSmiOutput = string | null;

/** The query systeminformation 5 runs, field for field, so recordings of either agree. */
export const NVIDIA_SMI_FIELDS = [
  'driver_version',
  'pci.sub_device_id',
  'name',
  'pci.bus_id',
  'fan.speed',
  'memory.total',
  'memory.used',
  'memory.free',
  'utilization.gpu',
  'utilization.memory',
  'temperature.gpu',
  'temperature.memory',
  'power.draw',
  'power.limit',
  'clocks.gr',
  'clocks.mem',
] as const;

/** One round of readings: one call of each probe method. */
export interface ProbeRound {
  readonly currentLoad: CpuLoad;
  readonly cpuTemperature: CpuTemperature;
  readonly mem: Memory;
  readonly fsSize: readonly Filesystem[];
  readonly networkStats: readonly NetworkStat[];
  readonly graphics: Graphics;
  readonly nvidiaSmi: NvidiaSmiOutput;
  readonly battery: Battery;
  readonly time: TimeInfo;
  readonly loadavg: LoadAverage;
}

/** Facts about the machine that do not change while the agent runs. */
export interface StaticInfo {
  readonly osInfo: Readonly<Record<string, unknown>>;
  readonly system: Readonly<Record<string, unknown>>;
  readonly cpu: Readonly<Record<string, unknown>>;
}

export type Probe = {
  readonly [K in keyof ProbeRound]: () => Promise<ProbeRound[K]>;
} & {
  readonly staticInfo: () => Promise<StaticInfo>;
  /** Ends what the probe keeps running (the real probe's nvidia-smi); called when the agent stops. */
  readonly close?: () => void;
};

export const PROBE_CALLS = [
  'currentLoad',
  'cpuTemperature',
  'mem',
  'fsSize',
  'networkStats',
  'graphics',
  'nvidiaSmi',
  'battery',
  'time',
  'loadavg',
] as const satisfies readonly (keyof ProbeRound)[];

/** The file `hostpulse agent --record` writes and `--replay` reads. */
export interface Recording {
  readonly description?: string;
  readonly sources?: Readonly<Record<string, string>>;
  readonly platform: string;
  readonly static: StaticInfo;
  readonly rounds: readonly ProbeRound[];
}

/** Records `count` rounds `gapMs` apart from a probe. */
export async function record(probe: Probe, platform: string, count = 2, gapMs = 1000): Promise<Recording> {
  const rounds: ProbeRound[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
    const entries = await Promise.all(PROBE_CALLS.map(async (call) => [call, await probe[call]()] as const));
    rounds.push(Object.fromEntries(entries) as unknown as ProbeRound);
  }
  return { platform, static: await probe.staticInfo(), rounds };
}

/**
 * Plays a recording back. Each probe method steps through the rounds independently and stays
 * on the last one, so the first call of every method sees round 0 and later calls round 1+.
 */
export class ReplayProbe implements Probe {
  private readonly calls = new Map<keyof ProbeRound, number>();

  constructor(private readonly recording: Recording) {
    if (recording.rounds.length === 0) throw new Error('recording has no rounds');
  }

  static async fromFile(path: string): Promise<ReplayProbe> {
    const recording = JSON.parse(await readFile(path, 'utf8')) as Recording;
    return new ReplayProbe(recording);
  }

  private next<K extends keyof ProbeRound>(call: K): Promise<ProbeRound[K]> {
    const n = this.calls.get(call) ?? 0;
    this.calls.set(call, n + 1);
    const rounds = this.recording.rounds;
    const round = rounds[Math.min(n, rounds.length - 1)] as ProbeRound;
    // Recordings made before a probe call existed lack it: the machine "has no such sensor".
    return Promise.resolve(structuredClone(round[call] ?? null) as ProbeRound[K]);
  }

  readonly currentLoad = () => this.next('currentLoad');
  readonly cpuTemperature = () => this.next('cpuTemperature');
  readonly mem = () => this.next('mem');
  readonly fsSize = () => this.next('fsSize');
  readonly networkStats = () => this.next('networkStats');
  readonly graphics = () => this.next('graphics');
  readonly nvidiaSmi = () => this.next('nvidiaSmi');
  readonly battery = () => this.next('battery');
  readonly time = () => this.next('time');
  readonly loadavg = () => this.next('loadavg');
  readonly staticInfo = () => Promise.resolve(structuredClone(this.recording.static));
}
