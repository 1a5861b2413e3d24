/**
 * The one place mqtt (MQTT.js) is imported: a small connection wrapper used by the agent's
 * publisher and the bridge's subscriber.
 *
 * - Reconnects back off exponentially with jitter (MQTT.js alone retries every second).
 * - Incoming messages go to one handler; a QoS 1 PUBACK is sent only when the handler's promise
 *   resolves, so the receiver decides when a message counts as taken (MQTT.js handles one
 *   incoming packet at a time, so a slow handler also pauses intake: that is the back-pressure).
 * - Acknowledgements leave in bursts: the socket is corked while a burst of incoming messages is
 *   handled (what arrived in one turn of the event loop, at most MAX_BURST messages), then
 *   `beforeAck` runs (the bridge makes the burst durable with one write), then the PUBACKs go out
 *   together in one write. If `beforeAck` throws, the connection is dropped with the PUBACKs
 *   unsent, and the broker delivers again.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { backoffDelay } from './backoff.js';
import type { Logger } from './logger.js';
import type { TlsFiles } from './tls-config.js';

export interface MqttSettings {
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly clientId: string;
  /** false: a persistent session, the broker queues QoS 1 messages while we are away. */
  readonly clean: boolean;
  readonly will?: { readonly topic: string; readonly payload: string; readonly retain: boolean };
  /** false: give up after the first failed attempt (one-shot commands). */
  readonly reconnect: boolean;
  readonly connectTimeoutMs?: number;
  readonly keepaliveSeconds?: number;
  /**
   * For mqtts:// and wss://: CAs to trust instead of the system's, and a client certificate with its
   * key. The broker's certificate and host name are always verified.
   */
  readonly tls?: TlsFiles | undefined;
  /** Receives every incoming message; set from the start so that nothing is acknowledged unhandled. */
  readonly onMessage?: MessageHandler;
  /** Runs before the acknowledgements of a burst of handled messages are sent. */
  readonly beforeAck?: () => void;
}

export type MessageHandler = (topic: string, payload: Buffer) => void | Promise<void>;

/** URL schemes the MQTT settings accept: TCP, TLS, WebSocket, secure WebSocket. */
export const MQTT_PROTOCOLS = ['mqtt', 'mqtts', 'ws', 'wss'] as const;

/** Reconnect attempts: the n-th waits a random time in [1 s, min(30 s, 2ⁿ s)] (common/backoff.ts). */
export const RECONNECT_BACKOFF = { baseMs: 1000, maxMs: 30_000 } as const;

/**
 * Messages in one burst at most. While a backlog drains, MQTT.js handles packet after packet
 * without yielding to the event loop, and the corked PUBACKs (three small writes each, which
 * MQTT.js never waits on) would pile up by the hundred thousand.
 */
const MAX_BURST = 500;

interface Socket {
  cork(): void;
  uncork(): void;
  destroy(error?: Error): void;
  _write(chunk: Buffer, encoding: BufferEncoding | 'buffer', callback: (error?: Error | null) => void): void;
  _writev?(chunks: { chunk: Buffer | string; encoding: BufferEncoding }[], callback: (error?: Error | null) => void): void;
}

interface Burst {
  readonly socket: Socket;
  messages: number;
}

const coalescing = new WeakSet<Socket>();

/**
 * What a corked socket holds is written as one buffer. MQTT.js writes a PUBACK as three writes of
 * one or two bytes: given as separate pieces, 500 of them leave 1024 pieces per system call, more
 * slowly than a backlog brings new ones, and unsent PUBACKs pile up in memory.
 */
function coalesceWrites(socket: Socket): void {
  if (coalescing.has(socket)) return;
  coalescing.add(socket);
  socket._writev = (chunks, callback) => {
    const buffers = chunks.map(({ chunk, encoding }) => (typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk));
    socket._write(Buffer.concat(buffers), 'buffer', callback);
  };
}

/** CONNACK return codes of MQTT 3.1.1, in words. */
const CONNACK_REASONS: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'client identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

/** Codes of node:tls for a failed handshake: certificate checks (OpenSSL's names) and TLS alerts. */
const TLS_ERROR = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_|INVALID_CA|INVALID_PURPOSE)/;

export function describeMqttError(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown; reason?: unknown };
  if (typeof e.code === 'number' && CONNACK_REASONS[e.code]) return `broker refused the connection: ${CONNACK_REASONS[e.code]}`;
  const message = typeof e.message === 'string' ? e.message : String(error);
  if (typeof e.code !== 'string' || !TLS_ERROR.test(e.code)) return message;
  // An alert from the broker comes as OpenSSL's whole error string; its `reason` is the readable part.
  return `TLS handshake failed: ${typeof e.reason === 'string' && e.code.startsWith('ERR_SSL_') ? e.reason : message}`;
}

/** The broker URL with any password removed, for logs. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

export class MqttConnection {
  private readonly client: MqttClient;
  private attempts = 0;
  private lastError: unknown;
  private readonly connectHandlers: ((sessionPresent: boolean) => void)[] = [];
  /** Bursts in a row whose `beforeAck` failed: reconnects back off on them too, and they are logged sparingly. */
  private ackFailures = 0;
  /** The burst being handled (its socket corked), if any. */
  private burst: Burst | undefined;

  constructor(
    private readonly settings: MqttSettings,
    private readonly logger: Logger,
  ) {
    const options: IClientOptions = {
      clientId: settings.clientId,
      clean: settings.clean,
      protocolVersion: 4,
      connectTimeout: settings.connectTimeoutMs ?? 10_000,
      keepalive: settings.keepaliveSeconds ?? 30,
      reconnectPeriod: settings.reconnect ? backoffDelay(0, RECONNECT_BACKOFF) : 0,
      resubscribe: false,
      // A refused login is retried too (with backoff): the broker's password file may be fixed meanwhile.
      reconnectOnConnackError: settings.reconnect,
      ...(settings.username !== undefined ? { username: settings.username } : {}),
      ...(settings.password !== undefined ? { password: settings.password } : {}),
      ...(settings.will ? { will: { ...settings.will, qos: 1 as const } } : {}),
      // Verification always on (also MQTT.js's default); only the CAs to trust can be chosen.
      rejectUnauthorized: true,
      ...(settings.tls?.ca ? { ca: settings.tls.ca } : {}),
      ...(settings.tls?.cert ? { cert: settings.tls.cert } : {}),
      ...(settings.tls?.key ? { key: settings.tls.key } : {}),
      // MQTT.js calls its `debug` logger about twenty times per packet: a few per cent of the bridge's CPU.
      log: () => undefined,
      // Off: MQTT.js would otherwise build, on its first packet, a Buffer for each of the 65,536
      // packet ids (mqtt-packet's number cache): 65,536 objects, about 7 MB of heap held for the
      // process's life, for two bytes saved per packet.
      writeCache: false,
    };
    this.client = mqtt.connect(settings.url, options);
    this.client.handleMessage = (packet, callback) => {
      const handler = settings.onMessage;
      if (!handler) return callback();
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      this.beginBurst();
      let result: void | Promise<void>;
      try {
        result = handler(packet.topic, payload);
      } catch (error) {
        this.logger.error({ err: error, topic: packet.topic }, 'message handler failed');
        return callback();
      }
      if (result) {
        const ack = (): void => {
          // Intake waited (back-pressure): this acknowledgement leaves in a burst of its own.
          this.beginBurst();
          callback();
        };
        result.then(ack, (error: unknown) => {
          this.logger.error({ err: error, topic: packet.topic }, 'message handler failed');
          ack();
        });
      } else {
        callback();
        if (this.burst && ++this.burst.messages >= MAX_BURST) this.endBurst(this.burst);
      }
    };
    this.client.on('connect', (connack) => {
      if (this.attempts > 0) {
        this.logger.info({ url: safeUrl(settings.url), attempts: this.attempts, sessionPresent: connack.sessionPresent }, 'broker connection restored');
      } else this.logger.info({ url: safeUrl(settings.url), sessionPresent: connack.sessionPresent }, 'connected to broker');
      this.attempts = 0;
      this.lastError = undefined;
      this.client.options.reconnectPeriod = settings.reconnect ? backoffDelay(0, RECONNECT_BACKOFF) : 0;
      for (const h of this.connectHandlers) h(connack.sessionPresent);
    });
    this.client.on('error', (error) => {
      this.lastError = error;
    });
    // Before MQTT.js's own close listener, which schedules the reconnect with the period set here:
    // otherwise the first retry after a drop comes after exactly 1 s for every client, in step.
    this.client.prependListener('close', () => {
      if (!settings.reconnect || this.client.disconnecting) return;
      this.attempts++;
      const delay = backoffDelay(this.attempts + this.ackFailures, RECONNECT_BACKOFF);
      this.client.options.reconnectPeriod = delay;
      const fields = { url: safeUrl(settings.url), attempt: this.attempts, retryInMs: delay, reason: this.reason() };
      // First failures at warn, then only every 10th, so a long outage does not flood the log.
      if (this.attempts <= 3 || this.attempts % 10 === 0) this.logger.warn(fields, 'broker unreachable, retrying');
    });
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Corks the socket until the current burst of packets has been handled (the end of this turn of the event loop). */
  private beginBurst(): void {
    if (this.burst) return;
    const socket = this.client.stream as unknown as Socket;
    coalesceWrites(socket);
    socket.cork();
    const burst: Burst = { socket, messages: 0 };
    this.burst = burst;
    setImmediate(() => this.endBurst(burst));
  }

  private endBurst(burst: Burst): void {
    if (this.burst !== burst) return; // ended already (MAX_BURST)
    this.burst = undefined;
    const { socket } = burst;
    try {
      this.settings.beforeAck?.();
    } catch (error) {
      this.ackFailures++;
      if (this.ackFailures <= 3 || this.ackFailures % 10 === 0) {
        const err = error instanceof Error ? error.message : String(error);
        this.logger.error(
          { err, failures: this.ackFailures },
          'could not keep the messages received: dropping the connection unacknowledged, the broker will deliver them again',
        );
      }
      socket.destroy();
      return;
    }
    this.ackFailures = 0;
    socket.uncork();
  }

  /** The last connection error in words. */
  reason(): string {
    return this.lastError === undefined ? 'connection closed' : describeMqttError(this.lastError);
  }

  onConnect(handler: (sessionPresent: boolean) => void): void {
    this.connectHandlers.push(handler);
  }

  /** Resolves on the first connection; rejects with the reason when it fails or times out. */
  waitConnected(timeoutMs: number): Promise<void> {
    if (this.client.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.client.off('connect', onConnect);
        this.client.off('close', onClose);
      };
      const onConnect = (): void => {
        cleanup();
        resolve();
      };
      const onClose = (): void => {
        if (this.settings.reconnect) return;
        cleanup();
        reject(new Error(`could not connect to ${safeUrl(this.settings.url)}: ${this.reason()}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`could not connect to ${safeUrl(this.settings.url)} within ${timeoutMs} ms: ${this.reason()}`));
      }, timeoutMs);
      this.client.on('connect', onConnect);
      this.client.on('close', onClose);
    });
  }

  /** Publishes; for QoS 1 resolves when the broker has acknowledged. */
  publish(topic: string, payload: string, options: { qos: 0 | 1; retain?: boolean }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.publish(topic, payload, { qos: options.qos, retain: options.retain ?? false }, (error) => (error ? reject(error) : resolve()));
    });
  }

  subscribe(topic: string, qos: 0 | 1): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.subscribe(topic, { qos }, (error, granted) => {
        if (error) return reject(error);
        const refused = granted?.find((g) => g.qos === 128);
        if (refused) return reject(new Error(`broker refused the subscription to ${topic}`));
        resolve();
      });
    });
  }

  /** Disconnects; `force` drops what is still in flight. */
  close(force = false): Promise<void> {
    return new Promise((resolve) => this.client.end(force, {}, () => resolve()));
  }
}
