/**
 * An MQTT broker in its own process, for the up-broker stage (bench/stages-up-broker.ts):
 * - `embedded`: `hostpulse up`'s broker (broker/server.ts), anonymous, as `up` runs it;
 * - `aedes`: the raw limit, bare aedes (same version and options) on each net.Socket as it comes.
 * Reports `listening` {port}. It imports aedes directly on purpose: it is the reference the embedded
 * broker's wrapper is measured against.
 */
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { startEmbeddedBroker } from '../broker/server.js';
import { createLogger } from '../common/logger.js';
import { childOptions, report } from './proc.js';

export interface BrokerOptions {
  readonly kind: 'embedded' | 'aedes';
}

const o = childOptions<BrokerOptions>();
const logger = createLogger({ name: 'bench-broker', level: 'warn', fd: 2 });
if (o.kind === 'embedded') {
  const broker = await startEmbeddedBroker({ host: '127.0.0.1', port: 0, wsPort: 0, maxConnections: 1000, maxPacketBytes: 65_536 }, logger);
  report('listening', { port: broker.port });
} else {
  const aedes = await Aedes.createBroker({ id: 'bench-aedes', connectTimeout: 5000, maxClientsIdLength: 128, heartbeatInterval: 60_000 });
  const server: Server = createServer((socket) => aedes.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  report('listening', { port: (server.address() as { port: number }).port });
}
process.once('SIGTERM', () => process.exit(0));
