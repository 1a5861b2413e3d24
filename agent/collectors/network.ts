import { instanceSlug } from '../../protocol/index.js';
import { add, isNumber, uniqueSlugs, type CollectorFactory, type Reading } from '../collector.js';

/** Loopback and the virtual interfaces that containers and VMs create by the dozen. */
const SKIPPED =
  /^(lo|lo0|veth.*|docker\d+|br-[0-9a-f]+|virbr\d+(-nic)?|cni\d+|flannel\..*|cali.*|vnet\d+|utun\d+|awdl\d+|llw\d+|gif\d+|stf\d+|anpi\d+|ap\d+)$/i;

interface Counters {
  readonly rx: number;
  readonly tx: number;
  readonly at: number;
}

/**
 * Receive and transmit rate of each network interface, in bytes per second, computed from the
 * byte counters between two calls (the first call only takes the baseline). A counter that goes
 * backwards (reset, wrap) yields no rate for that interval.
 */
export const network: CollectorFactory = ({ probe, monotonicMs }) => {
  let previous = new Map<string, Counters>();
  return {
    name: 'network',
    templates: ['net_{name}_rx', 'net_{name}_tx'],
    async collect() {
      const at = monotonicMs();
      const stats = (await probe.networkStats()).filter((s) => !SKIPPED.test(s.iface) && isNumber(s.rx_bytes) && isNumber(s.tx_bytes));
      const slugs = uniqueSlugs(
        stats.map((s) => s.iface),
        instanceSlug,
      );
      const readings: Reading[] = [];
      const current = new Map<string, Counters>();
      for (const s of stats) {
        current.set(s.iface, { rx: s.rx_bytes, tx: s.tx_bytes, at });
        const before = previous.get(s.iface);
        const seconds = before ? (at - before.at) / 1000 : 0;
        if (!before || seconds <= 0) continue;
        const rx = (s.rx_bytes - before.rx) / seconds;
        const tx = (s.tx_bytes - before.tx) / seconds;
        const name = slugs.get(s.iface);
        if (rx >= 0) add(readings, 'net_{name}_rx', rx, name, 1);
        if (tx >= 0) add(readings, 'net_{name}_tx', tx, name, 1);
      }
      previous = current;
      return readings;
    },
  };
};
