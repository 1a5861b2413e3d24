/**
 * Does the bridge's memory stay flat? The bridge under a steady paced load (BENCH_SOAK_RATE
 * samples/s from BENCH_HOSTS hosts, default 10,000/s) for BENCH_SOAK_SECONDS (default 600), its
 * RSS read from /proc every 5 s. After a minute of warm-up, the peak RSS of the last third of the
 * run is compared with the peak of the first third (growth ≤ 10 % passes), and the slope of a
 * least-squares line through the samples is reported in MB per 10 minutes. Every acknowledged
 * sample must be stored.
 */
import { rssBytes } from '../test/harness/proc.js';
import { createDatabase, publish, sleep, waitStored, type BenchContext } from './context.js';
import { queueDir, startBridge } from './stages-bridge.js';

/** RSS in MB (10^6 bytes), as the targets are written. */
const MB = 1_000_000;
const WARM_UP_MS = 60_000;
const EVERY_MS = 5000;

interface RssSample {
  readonly at: number;
  readonly mb: number;
}

/** Least-squares slope of mb over time, MB per ms. */
function slope(samples: readonly RssSample[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mx = samples.reduce((a, s) => a + s.at, 0) / n;
  const my = samples.reduce((a, s) => a + s.mb, 0) / n;
  const sxy = samples.reduce((a, s) => a + (s.at - mx) * (s.mb - my), 0);
  const sxx = samples.reduce((a, s) => a + (s.at - mx) ** 2, 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

const peak = (samples: readonly RssSample[]): number => Math.max(...samples.map((s) => s.mb));

export async function bridgeSoak(ctx: BenchContext): Promise<void> {
  const db = 'bench_soak';
  const seconds = ctx.settings.soakSeconds;
  const rate = ctx.settings.soakRate;
  await createDatabase(ctx, db);
  const bridge = startBridge(ctx, db, 'bench-bridge-soak', queueDir());
  const samples: RssSample[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        samples.push({ at: Date.now(), mb: rssBytes(bridge.child) / MB });
      } catch {
        return; // the bridge is gone: the stage fails below
      }
      await sleep(EVERY_MS);
    }
  })();
  try {
    await bridge.waitForLog((l) => l.msg === 'subscribed', 30_000);
    const pub = await publish(ctx, { prefix: 'soak', mode: 'paced', rate, seconds, tsNow: true, t0: 0 });
    const stored = await waitStored(ctx, db, pub.acked, 30_000, 1000);
    sampling = false;
    await sampler;
    const start = pub.firstAt + WARM_UP_MS;
    const steady = samples.filter((s) => s.at >= start && s.at <= pub.lastAckAt);
    if (steady.length < 6) throw new Error(`soak too short to judge: ${steady.length} RSS samples after the warm-up (BENCH_SOAK_SECONDS ≥ 120)`);
    const third = Math.floor(steady.length / 3);
    const first = peak(steady.slice(0, third));
    const last = peak(steady.slice(-third));
    const perTenMin = slope(steady) * 600_000;
    const note = `${rate} samples/s for ${seconds} s; RSS every ${EVERY_MS / 1000} s after a ${WARM_UP_MS / 1000} s warm-up: first third peak ${first.toFixed(0)} MB, last third ${last.toFixed(0)} MB, min ${Math.min(...steady.map((s) => s.mb)).toFixed(0)}; ${stored.count.toLocaleString('en-US')} of ${pub.acked.toLocaleString('en-US')} stored`;
    ctx.figures.push(
      {
        id: 'soak_rss_growth',
        label: `bridge RSS growth over ${Math.round(seconds / 60)} min (last third peak ÷ first third peak)`,
        value: last / first,
        unit: '×',
        target: { op: '<=', bound: 1.1 },
        note,
      },
      { id: 'soak_rss_slope', label: 'bridge RSS trend (least squares)', value: perTenMin, unit: 'MB/10 min' },
      { id: 'soak_rss_peak', label: 'bridge peak RSS, soak', value: peak(steady), unit: 'MB', target: { op: '<=', bound: 150 } },
      { id: 'soak_stored', label: 'soak: acknowledged samples stored', value: stored.count / pub.acked, unit: '×', target: { op: '>=', bound: 1 } },
    );
  } finally {
    sampling = false;
    await sampler.catch(() => undefined);
    await bridge.stop();
  }
}
