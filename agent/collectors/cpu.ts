import { add, isNumber, type CollectorFactory, type Reading } from '../collector.js';

/** CPU usage, package temperature and the hottest core. */
export const cpu: CollectorFactory = ({ probe }) => ({
  name: 'cpu',
  templates: ['cpu_usage', 'cpu_temp', 'cpu_temp_max'],
  async collect() {
    const [load, temperature] = await Promise.all([probe.currentLoad(), probe.cpuTemperature()]);
    const readings: Reading[] = [];
    if (isNumber(load.currentLoad)) add(readings, 'cpu_usage', Math.min(100, Math.max(0, load.currentLoad)));
    // systeminformation reports null without a sensor; some drivers report 0 or -1 instead.
    if (isNumber(temperature.main) && temperature.main > 0) add(readings, 'cpu_temp', temperature.main, undefined, 1);
    const cores = temperature.cores.filter((t): t is number => isNumber(t) && t > 0);
    if (cores.length > 0) add(readings, 'cpu_temp_max', Math.max(...cores), undefined, 1);
    return readings;
  },
});
