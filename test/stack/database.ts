/** What the database stand-in (VictoriaMetrics) holds, read through the stack's published port. */
import type { Series } from '../harness/victoria.js';

export { exportSeries, type Series } from '../harness/victoria.js';

/** The number of samples in these series. */
export const sampleCount = (series: readonly Series[]): number => series.reduce((n, s) => n + s.values.length, 0);
