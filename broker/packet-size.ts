/**
 * Guards a broker from oversized MQTT packets before it buffers them: follows the packet framing
 * (fixed header, variable-length "remaining length") on the raw byte stream and ends the
 * connection at the first packet larger than the limit. aedes has no such limit of its own.
 */
import { Transform, type TransformCallback } from 'node:stream';

export const PACKET_TOO_LARGE = 'ERR_MQTT_PACKET_TOO_LARGE';

export class PacketSizeLimit extends Transform {
  /** Bytes of the current packet's body still to pass. */
  private remaining = 0;
  /** Reading a fixed header: 0 = expect the type byte, 1..4 = length bytes read so far. */
  private headerBytes = 0;
  private length = 0;
  private multiplier = 1;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - i);
        this.remaining -= take;
        i += take;
        continue;
      }
      const byte = chunk[i++] as number;
      if (this.headerBytes === 0) {
        this.headerBytes = 1;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.headerBytes++;
      if (this.length > this.maxBytes) return callback(Object.assign(new Error(`packet over ${this.maxBytes} bytes`), { code: PACKET_TOO_LARGE }));
      if ((byte & 0x80) === 0) {
        this.remaining = this.length;
        this.headerBytes = 0;
      } else if (this.headerBytes > 4) {
        return callback(new Error('malformed packet length'));
      }
    }
    callback(null, chunk);
  }
}
