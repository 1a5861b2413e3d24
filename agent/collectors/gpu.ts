import { add, isNumber, type CollectorFactory, type Reading } from '../collector.js';
import { NVIDIA_SMI_FIELDS, type GpuController } from '../probe/index.js';

const MIB = 1024 * 1024;

/** One GPU's live figures; memory in MiB as nvidia-smi and systeminformation report it. */
export interface GpuFigures {
  readonly temperatureGpu?: number | null | undefined;
  readonly utilizationGpu?: number | null | undefined;
  readonly memoryTotal?: number | null | undefined;
  readonly memoryUsed?: number | null | undefined;
  readonly powerDraw?: number | null | undefined;
  readonly fanSpeed?: number | null | undefined;
}

/** A value nvidia-smi could not read: `N/A`, `[N/A]`, `[Not Supported]`, `[Unknown Error]`… */
function number(text: string | undefined): number | undefined {
  if (text === undefined || /^\[|N\/A/.test(text)) return undefined;
  const n = Number.parseFloat(text);
  return Number.isFinite(n) ? n : undefined;
}

/** Parses the CSV of the query in NVIDIA_SMI_FIELDS; lines of another shape are skipped. */
export function parseNvidiaSmi(csv: string): GpuFigures[] {
  const at = (name: (typeof NVIDIA_SMI_FIELDS)[number]): number => NVIDIA_SMI_FIELDS.indexOf(name);
  return csv
    .split(/\r?\n/)
    .map((line) => line.split(',').map((f) => f.trim()))
    .filter((fields) => fields.length === NVIDIA_SMI_FIELDS.length)
    .map((f) => ({
      temperatureGpu: number(f[at('temperature.gpu')]),
      utilizationGpu: number(f[at('utilization.gpu')]),
      memoryTotal: number(f[at('memory.total')]),
      memoryUsed: number(f[at('memory.used')]),
      powerDraw: number(f[at('power.draw')]),
      fanSpeed: number(f[at('fan.speed')]),
    }));
}

/** A controller that reports at least one live metric. */
export function hasMetrics(gpu: GpuFigures): boolean {
  return [gpu.temperatureGpu, gpu.utilizationGpu, gpu.memoryUsed, gpu.powerDraw, gpu.fanSpeed].some(isNumber);
}

/**
 * Per GPU: temperature, utilisation, memory use, power draw and fan speed where reported.
 * NVIDIA GPUs come from nvidia-smi, numbered by its index; without nvidia-smi, the controllers
 * of systeminformation's graphics() that report live figures, in its order. Display-only
 * adapters (most integrated GPUs) are skipped.
 */
export const gpu: CollectorFactory = ({ probe }) => ({
  name: 'gpu',
  templates: ['gpu{n}_temp', 'gpu{n}_usage', 'gpu{n}_mem_usage', 'gpu{n}_mem_used', 'gpu{n}_power', 'gpu{n}_fan'],
  async collect() {
    const csv = await probe.nvidiaSmi();
    let gpus: readonly GpuFigures[] = csv ? parseNvidiaSmi(csv) : [];
    if (gpus.length === 0) gpus = (await probe.graphics()).controllers.filter((c: GpuController) => hasMetrics(c));
    const readings: Reading[] = [];
    gpus.forEach((g, n) => {
      add(readings, 'gpu{n}_temp', g.temperatureGpu, n, 1);
      add(readings, 'gpu{n}_usage', g.utilizationGpu, n);
      if (isNumber(g.memoryUsed)) {
        add(readings, 'gpu{n}_mem_used', g.memoryUsed * MIB, n, 0);
        if (isNumber(g.memoryTotal) && g.memoryTotal > 0) add(readings, 'gpu{n}_mem_usage', (g.memoryUsed / g.memoryTotal) * 100, n);
      }
      add(readings, 'gpu{n}_power', g.powerDraw, n);
      add(readings, 'gpu{n}_fan', g.fanSpeed, n);
    });
    return readings;
  },
});
