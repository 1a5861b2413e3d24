/**
 * A TCP proxy between a client and a server (an agent or the bridge and the broker) that can
 * misbehave like a network: a blackhole (nothing passes either way, yet every socket stays open,
 * as when a route dies; new connections are accepted but get no further), and connection resets
 * (of open connections, or of each new one).
 * It records when each connection was accepted, so a test can see how often a client reconnects.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** When each client connection was accepted, ms since the epoch. */
  readonly accepted: readonly number[];
  /** Connections open now (both sides). */
  readonly open: number;
  /** Stops forwarding in both directions; sockets stay open, closes are not passed on. */
  blackhole(): void;
  /** Forwards again: what waited flows, and a side closed meanwhile closes its partner. */
  restore(): void;
  /** Resets (TCP RST) every open connection, both sides; returns how many. */
  reset(): number;
  /** Until `restore`, resets every new connection as soon as it is accepted (a firewall sending RST). */
  refuse(): void;
  close(): Promise<void>;
}

interface Pair {
  readonly client: Socket;
  upstream?: Socket;
  /** Bytes a connection accepted during a blackhole sent before it could be connected on. */
  readonly early: Buffer[];
  /** One side closed while the blackhole held: close the other once it lifts. */
  closed: boolean;
}

/** Bytes held for a connection accepted during a blackhole (its CONNECT); beyond, it is paused. */
const EARLY_LIMIT = 64 * 1024;

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  const accepted: number[] = [];
  let holding = false;
  let refusing = false;

  const destroy = (pair: Pair): void => {
    pairs.delete(pair);
    pair.client.destroy();
    pair.upstream?.destroy();
  };

  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (data: Buffer) => {
      if (!to.write(data)) {
        from.pause();
        to.once('drain', () => {
          if (!holding) from.resume();
        });
      }
    });
  };

  const link = (pair: Pair): void => {
    const upstream = connect(targetPort, '127.0.0.1');
    pair.upstream = upstream;
    for (const chunk of pair.early.splice(0)) upstream.write(chunk);
    pair.client.removeAllListeners('data');
    forward(pair.client, upstream);
    forward(upstream, pair.client);
    pair.client.resume();
    const ended = (): void => {
      if (holding) pair.closed = true;
      else destroy(pair);
    };
    upstream.on('close', ended);
    upstream.on('error', () => undefined);
  };

  const server = createServer((client) => {
    accepted.push(Date.now());
    client.on('error', () => undefined);
    if (refusing) return void client.resetAndDestroy();
    const pair: Pair = { client, early: [], closed: false };
    pairs.add(pair);
    client.on('close', () => {
      if (holding && pair.upstream) pair.closed = true;
      else destroy(pair);
    });
    if (!holding) return link(pair);
    // Held: read what it sends first (an MQTT CONNECT), so a client giving up is seen and dropped.
    client.on('data', (data: Buffer) => {
      pair.early.push(data);
      if (pair.early.reduce((n, b) => n + b.length, 0) > EARLY_LIMIT) client.pause();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    port: (server.address() as AddressInfo).port,
    accepted,
    get open() {
      return pairs.size;
    },
    blackhole() {
      holding = true;
      for (const pair of pairs) {
        pair.client.pause();
        pair.upstream?.pause();
      }
    },
    refuse() {
      refusing = true;
    },
    restore() {
      holding = false;
      refusing = false;
      for (const pair of [...pairs]) {
        if (pair.closed) destroy(pair);
        else if (!pair.upstream) link(pair);
        else {
          pair.client.resume();
          pair.upstream.resume();
        }
      }
    },
    reset() {
      const n = pairs.size;
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        pair.client.resetAndDestroy();
        pair.upstream?.resetAndDestroy();
      }
      return n;
    },
    close: () =>
      new Promise((resolve) => {
        for (const pair of [...pairs]) destroy(pair);
        server.close(() => resolve());
      }),
  };
}
