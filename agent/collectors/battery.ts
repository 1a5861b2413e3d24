import { add, type CollectorFactory, type Reading } from '../collector.js';

/** Battery charge and whether it is charging, on machines that have one. */
export const battery: CollectorFactory = ({ probe }) => ({
  name: 'battery',
  templates: ['battery_level', 'battery_charging'],
  async collect() {
    const info = await probe.battery();
    const readings: Reading[] = [];
    if (!info.hasBattery) return readings;
    add(readings, 'battery_level', info.percent);
    add(readings, 'battery_charging', info.isCharging ? 1 : 0);
    return readings;
  },
});
