/**
 * A raw MQTT 3.1.1 client over a bare TCP socket: it sends what a well-behaved library refuses to
 * (topics that are not UTF-8 or hold NUL, oversized packets, wildcards in a PUBLISH), so a test
 * can see what the broker does with them.
 */
import { connect, type Socket } from 'node:net';

export interface RawClient {
  /**
   * Publishes bytes as they are. QoS 1 resolves 'acked' on the PUBACK, QoS 0 'sent' once written;
   * 'closed' when the broker closes the connection first.
   */
  publish(topic: string | Buffer, payload: string | Buffer, qos?: 0 | 1): Promise<'acked' | 'sent' | 'closed'>;
  /** Whether the broker has closed the connection. */
  readonly closed: boolean;
  end(): void;
}

function remainingLength(length: number): Buffer {
  const bytes: number[] = [];
  let n = length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

const packet = (type: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([type]), remainingLength(body.length), body]);
const prefixed = (b: Buffer): Buffer => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
const bytes = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s) : s);

/**
 * Connects (clean session unless `clean: false`; MQTT 3.1.1 unless `protocol: 5`) and resolves once
 * the broker accepted; rejects with the CONNACK code (`CONNACK 2`) or the close.
 */
export function rawConnect(
  port: number,
  login: { clientId: string; username?: string; password?: string; clean?: boolean; protocol?: 4 | 5 },
): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let closed = false;
    let buffer = Buffer.alloc(0);
    let nextId = 1;
    const acks = new Map<number, (r: 'acked' | 'closed') => void>();
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      for (const done of acks.values()) done('closed');
      acks.clear();
      reject(new Error('connection closed before CONNACK'));
    });
    const client: RawClient = {
      get closed() {
        return closed;
      },
      publish(topic, payload, qos = 1) {
        if (closed) return Promise.resolve('closed');
        const id = nextId++;
        const body = Buffer.concat([prefixed(bytes(topic)), qos ? Buffer.from([id >> 8, id & 0xff]) : Buffer.alloc(0), bytes(payload)]);
        return new Promise((done) => {
          if (qos) acks.set(id, done);
          socket.write(packet(0x30 | (qos << 1), body), () => {
            if (!qos) done(closed ? 'closed' : 'sent');
          });
        });
      },
      end: () => socket.destroy(),
    };
    socket.on('data', (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      while (buffer.length >= 2) {
        const type = (buffer[0] as number) >> 4;
        const length = buffer[1] as number; // CONNACK and PUBACK are short
        if (buffer.length < 2 + length) return;
        const body = buffer.subarray(2, 2 + length);
        buffer = buffer.subarray(2 + length);
        if (type === 2) {
          const code = body[1] as number;
          if (code === 0) resolve(client);
          else reject(new Error(`CONNACK ${code}`));
        } else if (type === 4) {
          const id = ((body[0] as number) << 8) | (body[1] as number);
          acks.get(id)?.('acked');
          acks.delete(id);
        }
      }
    });
    const protocol = login.protocol ?? 4;
    const flags = (login.clean === false ? 0 : 0x02) | (login.username !== undefined ? 0x80 : 0) | (login.password !== undefined ? 0x40 : 0);
    const body = Buffer.concat([
      prefixed(Buffer.from('MQTT')),
      Buffer.from([protocol, flags, 0, 60]),
      protocol === 5 ? Buffer.from([0]) : Buffer.alloc(0), // MQTT 5: no properties
      prefixed(Buffer.from(login.clientId)),
      login.username !== undefined ? prefixed(Buffer.from(login.username)) : Buffer.alloc(0),
      login.password !== undefined ? prefixed(Buffer.from(login.password)) : Buffer.alloc(0),
    ]);
    socket.write(packet(0x10, body));
  });
}
