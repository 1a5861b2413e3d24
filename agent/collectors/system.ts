import { add, type CollectorFactory, type Reading } from '../collector.js';

/** Load averages (not on Windows) and uptime. */
export const system: CollectorFactory = ({ probe }) => ({
  name: 'system',
  templates: ['load1', 'load5', 'load15', 'uptime'],
  async collect() {
    const [load, time] = await Promise.all([probe.loadavg(), probe.time()]);
    const readings: Reading[] = [];
    if (load) {
      add(readings, 'load1', load[0]);
      add(readings, 'load5', load[1]);
      add(readings, 'load15', load[2]);
    }
    add(readings, 'uptime', time.uptime, undefined, 0);
    return readings;
  },
});
