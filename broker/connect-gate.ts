/**
 * The sockets of the embedded broker that have not sent CONNECT yet. Without a bound of their own
 * they count against the connection limit, so 1,000 idle sockets (no login needed) kept real
 * clients out. Here they are bounded per remote address and in all, and when a bound is reached
 * the OLDEST pending socket of that address (or of all) is closed, never the new one: a client
 * that sends CONNECT at once always gets in, and one address cannot push out the others' sockets
 * while it stays under its own bound.
 */
import type { Socket } from 'node:net';

export interface ConnectGateLimits {
  /** Sockets awaiting CONNECT from one remote address. */
  readonly perAddress: number;
  /** Sockets awaiting CONNECT in all. */
  readonly total: number;
}

/** Room for a whole office behind one NAT reconnecting at once; a CONNECT follows in one round trip. */
export const CONNECT_GATE_DEFAULTS: ConnectGateLimits = { perAddress: 64, total: 256 };

export class ConnectGate {
  /** Socket → its remote address (read at arrival: a closed socket no longer has one), in arrival order. */
  private readonly pending = new Map<Socket, string>();
  private readonly byAddress = new Map<string, Set<Socket>>();
  /** Pending sockets closed to make room, since the start. */
  evicted = 0;

  constructor(
    private readonly limits: ConnectGateLimits,
    private readonly onEvict: (remote: string | undefined) => void,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** A new socket: pending until `connected`, or closed to make room for a newer one. */
  admit(socket: Socket): void {
    const address = socket.remoteAddress ?? '';
    const mine = this.byAddress.get(address) ?? new Set<Socket>();
    this.byAddress.set(address, mine);
    const oldest = mine.size >= this.limits.perAddress ? first(mine) : this.pending.size >= this.limits.total ? first(this.pending.keys()) : undefined;
    if (oldest) {
      const remote = this.pending.get(oldest);
      this.release(oldest);
      this.evicted++;
      this.onEvict(remote);
      oldest.destroy();
    }
    this.pending.set(socket, address);
    mine.add(socket);
    socket.once('close', () => this.release(socket));
  }

  /** Its CONNECT arrived: no longer pending. */
  connected(socket: Socket): void {
    this.release(socket);
  }

  private release(socket: Socket): void {
    const address = this.pending.get(socket);
    if (address === undefined) return;
    this.pending.delete(socket);
    const mine = this.byAddress.get(address);
    mine?.delete(socket);
    if (mine?.size === 0) this.byAddress.delete(address);
  }
}

function first(sockets: Iterable<Socket>): Socket | undefined {
  for (const socket of sockets) return socket;
  return undefined;
}
