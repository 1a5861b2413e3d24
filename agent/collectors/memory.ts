import { add, type CollectorFactory, type Reading } from '../collector.js';

/** Memory and swap; "in use" means total minus available, as `free` shows it. */
export const memory: CollectorFactory = ({ probe }) => ({
  name: 'memory',
  templates: ['mem_usage', 'mem_used', 'mem_available', 'swap_usage', 'swap_used'],
  async collect() {
    const mem = await probe.mem();
    const readings: Reading[] = [];
    if (mem.total > 0) {
      const used = mem.total - mem.available;
      add(readings, 'mem_usage', (used / mem.total) * 100);
      add(readings, 'mem_used', used, undefined, 0);
      add(readings, 'mem_available', mem.available, undefined, 0);
    }
    if (mem.swaptotal > 0) {
      add(readings, 'swap_usage', (mem.swapused / mem.swaptotal) * 100);
      add(readings, 'swap_used', mem.swapused, undefined, 0);
    }
    return readings;
  },
});
