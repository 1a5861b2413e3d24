/**
 * The embedded MQTT broker of `hostpulse up` (the one place aedes and ws are imported), for a
 * machine without Docker. aedes' defaults are for a lab, so: a connection limit, a short CONNECT
 * timeout with its own bound on sockets awaiting CONNECT (broker/connect-gate.ts), a packet size
 * limit, client ids checked as MQTT 3.1.1 requires, retained messages bounded per login
 * (broker/retained-quota.ts), and, when logins are configured, Mosquitto's password file format,
 * the same access rules as the shipped Mosquitto (broker/acl.ts) and, as it has with
 * use_username_as_clientid, one session per login, named after it: whatever client id a client
 * sends, so no login can take over another's session. Without logins it accepts anonymous clients
 * with the ids they send, and the caller keeps it on the loopback interface. An MQTT-over-TLS
 * listener, when configured, serves the same broker with the same logins, rules and limits; with a
 * CA it requires client certificates signed by it.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Duplex } from 'node:stream';
import { Aedes, type AuthenticateError, type Client, type ConnectPacket, type PublishPacket } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { mayPublish, mayRead } from './acl.js';
import { CONNECT_GATE_DEFAULTS, ConnectGate, type ConnectGateLimits } from './connect-gate.js';
import type { Logger } from '../common/logger.js';
import { verifyPassword } from './passwd.js';
import { PACKET_TOO_LARGE, PacketSizeLimit } from './packet-size.js';
import { PrometheusText } from '../common/prometheus.js';
import { RETAINED_DEFAULTS, RetainedQuota, type RetainedLimits } from './retained-quota.js';
import { ThrottledLog } from '../common/throttle.js';

/** The longest client id accepted (UTF-8 bytes); MQTT 3.1.1 requires 23 and allows more. */
export const MAX_CLIENT_ID_BYTES = 128;

export interface EmbeddedBrokerOptions {
  readonly host: string;
  readonly port: number;
  /** MQTT over WebSocket; 0 turns it off. */
  readonly wsPort: number;
  /** Clients past CONNECT, on all listeners together; sockets awaiting CONNECT are bounded apart (`pending`). */
  readonly maxConnections: number;
  readonly maxPacketBytes: number;
  /** Retained messages per login; without logins, for the whole broker. Default RETAINED_DEFAULTS. */
  readonly retained?: RetainedLimits;
  /** Sockets awaiting CONNECT. Default CONNECT_GATE_DEFAULTS. */
  readonly pending?: ConnectGateLimits;
  /** A login's Mosquitto password lines (any may match); undefined: anonymous access, no access rules. */
  readonly logins?: (username: string) => readonly string[];
  /** MQTT over TLS; undefined turns it off. */
  readonly tls?: EmbeddedBrokerTls;
}

export interface EmbeddedBrokerTls {
  readonly port: number;
  /** The server's certificate chain (leaf first) and its key, PEM. */
  readonly cert: Buffer;
  readonly key: Buffer;
  /** When set, a client must present a certificate signed by one of these CAs (PEM). */
  readonly ca?: Buffer | undefined;
}

export interface EmbeddedBroker {
  readonly port: number;
  readonly wsPort: number;
  /** 0 when there is no TLS listener. */
  readonly tlsPort: number;
  readonly stats: () => EmbeddedBrokerStats;
  /** The counters in Prometheus' text format (hostpulse_broker_*), for GET /metrics. */
  readonly metrics: () => string;
  close(): Promise<void>;
}

export interface EmbeddedBrokerStats {
  /** Retained messages refused (acknowledged and dropped), by reason. */
  readonly retainedRefused: Readonly<Record<'over_topics' | 'over_bytes', number>>;
  readonly retainedTopics: number;
  readonly retainedBytes: number;
  /** CONNECTs refused before authentication, by reason. */
  readonly connectsRefused: Readonly<Record<'identifier_rejected' | 'server_unavailable', number>>;
  /** Sockets closed while awaiting CONNECT, to make room for newer ones. */
  readonly pendingClosed: number;
  readonly pending: number;
}

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/** Why a CONNECT's client id is refused ([MQTT-3.1.3-8]: no empty id for a session that is kept), or undefined. */
function clientIdProblem(packet: ConnectPacket): string | undefined {
  if (packet.clientId === '' && (packet.clean === false || packet.protocolVersion === 3)) return 'empty client id with a persistent session';
  if (Buffer.byteLength(packet.clientId) > MAX_CLIENT_ID_BYTES) return `client id over ${MAX_CLIENT_ID_BYTES} bytes`;
  return undefined;
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions, logger: Logger): Promise<EmbeddedBroker> {
  const logins = options.logins;
  const users = new WeakMap<object, string>();
  const warnings = new ThrottledLog(logger, 60_000);
  // Sockets awaiting CONNECT (TCP, TLS from before the handshake, WebSocket from before the upgrade)
  // and those past it; aedes' connection (the stream it reads) → its socket.
  const gate = new ConnectGate(options.pending ?? CONNECT_GATE_DEFAULTS, (remote) =>
    warnings.warn('pending', { remote }, 'connection closed: no CONNECT, and newer connections are waiting'),
  );
  const admitted = new Set<Socket>();
  const socketOf = new WeakMap<object, Socket>();
  const refused = new WeakMap<object, AuthenticateError>();
  const connectsRefused = { identifier_rejected: 0, server_unavailable: 0 };
  const retained = new RetainedQuota(options.retained ?? RETAINED_DEFAULTS);
  const retainedRefused = { over_topics: 0, over_bytes: 0 };

  /** CONNECT arrived: checked here, answered by `authenticate` (aedes sends a CONNACK only from there). */
  function preConnect(client: Client, packet: ConnectPacket, callback: (error: Error | null, success: boolean) => void): void {
    const socket = socketOf.get(client.conn);
    if (socket) gate.connected(socket);
    const idProblem = clientIdProblem(packet);
    if (idProblem !== undefined) {
      connectsRefused.identifier_rejected++;
      refused.set(client, authError('identifier rejected', 2));
      warnings.warn('client-id', { err: idProblem, remote: socket?.remoteAddress }, 'connection refused: client id rejected');
    } else if (admitted.size >= options.maxConnections) {
      connectsRefused.server_unavailable++;
      refused.set(client, authError('server unavailable', 3));
      warnings.warn(
        'max-connections',
        { maxConnections: options.maxConnections, remote: socket?.remoteAddress },
        'connection refused: connection limit reached',
      );
    } else if (socket) {
      admitted.add(socket);
      socket.once('close', () => admitted.delete(socket));
    }
    // One session per login, named after it (Mosquitto: use_username_as_clientid). aedes reads the
    // client id after this hook, for the session, its takeover and its queue; without a user name
    // authentication refuses the client anyway.
    if (logins && packet.username) packet.clientId = packet.username;
    callback(null, true);
  }

  function authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void {
    const refusal = refused.get(client);
    if (refusal) return done(refusal, false);
    if (!logins) return done(null, true);
    const lines = username === undefined ? [] : logins(username);
    if (username === undefined || !password || !lines.some((line) => verifyPassword(line, password.toString()))) {
      done(authError('bad user name or password', 4), false);
      return;
    }
    users.set(client, username);
    done(null, true);
  }

  /**
   * As Mosquitto does with MQTT 3.1.1: a refused publish is acknowledged and dropped (aedes would
   * disconnect the client, which a QoS 1 client answers by resending it forever). It is diverted
   * to a "$" topic that no login may read, and never retained.
   */
  function drop(packet: PublishPacket): void {
    packet.topic = '$hostpulse/denied';
    packet.payload = Buffer.alloc(0);
    packet.retain = false;
  }

  function authorizePublish(client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    if (!logins && packet.topic.startsWith('$SYS/')) return callback(new Error('$SYS/ topic is reserved')); // aedes' own rule
    const user = client ? users.get(client) : undefined;
    if (logins && client && (user === undefined || !mayPublish(user, packet.topic))) {
      logger.debug({ user, topic: packet.topic }, 'publish denied');
      drop(packet);
    } else if (packet.retain) {
      const owner = user ?? '';
      const payload = typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.length;
      const verdict = retained.offer(owner, packet.topic, payload);
      if (verdict === 'over_topics' || verdict === 'over_bytes') {
        retainedRefused[verdict]++;
        const held = retained.held(owner);
        warnings.warn(
          `retained:${owner}`,
          { user: logins ? owner : undefined, topic: packet.topic, reason: verdict, heldTopics: held.topics, heldBytes: held.bytes },
          'retained message refused: over the quota',
        );
        drop(packet);
      }
    }
    callback(null);
  }

  const aedes = await Aedes.createBroker({
    id: 'hostpulse-up',
    connectTimeout: 5000,
    maxClientsIdLength: MAX_CLIENT_ID_BYTES,
    heartbeatInterval: 60_000,
    preConnect,
    authenticate,
    authorizePublish,
    ...(logins
      ? {
          authorizeForward: (client, packet) => {
            const user = users.get(client);
            return user !== undefined && mayRead(user, packet.topic) ? packet : null;
          },
        }
      : {}),
  });
  // A listener holds its clients and the sockets awaiting CONNECT, each bounded on their own.
  const maxSockets = options.maxConnections + (options.pending ?? CONNECT_GATE_DEFAULTS).total;
  const tcp: Server = createServer((socket: Socket) => {
    gate.admit(socket);
    handleSocket(socket, socket);
  });
  tcp.maxConnections = maxSockets;
  /** `socket`: what aedes reads and writes (the TLS socket over TLS); `raw`: its TCP socket. */
  function handleSocket(socket: Socket, raw: Socket): void {
    const guard = new PacketSizeLimit(options.maxPacketBytes);
    guard.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === PACKET_TOO_LARGE) logger.warn({ err: error.message, remote: socket.remoteAddress }, 'connection closed: packet too large');
      socket.destroy();
    });
    socket.on('error', () => undefined);
    const conn = duplexOf(socket, guard);
    socketOf.set(conn, raw);
    aedes.handle(conn);
  }

  await listen(tcp, options.port, options.host);
  const port = (tcp.address() as { port: number }).port;

  // The same handling as TCP, on the decrypted stream; a failed handshake never reaches aedes.
  const tlsOptions = options.tls;
  const refusals = warnings;
  // The TCP sockets under TLS, pending from before the handshake, by their remote address and port.
  const underTls = new Map<string, Socket>();
  const peer = (s: Socket): string => `${s.remoteAddress}|${s.remotePort}`;
  const secure = tlsOptions
    ? createTlsServer(
        {
          cert: tlsOptions.cert,
          key: tlsOptions.key,
          minVersion: 'TLSv1.2',
          handshakeTimeout: 5000,
          // Client certificates are checked below rather than by node:tls, which would drop a
          // certificate of an unknown CA without a word; here the refusal is logged with its reason.
          ...(tlsOptions.ca ? { ca: tlsOptions.ca, requestCert: true, rejectUnauthorized: false } : {}),
        },
        (socket) => {
          if (tlsOptions?.ca && !socket.authorized) {
            // Node gives OpenSSL's code (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE: not signed by these CAs).
            const peer = socket.getPeerCertificate();
            const code = String(socket.authorizationError);
            const fields = peer.subject
              ? { err: code, subject: peer.subject.CN, issuer: peer.issuer.CN, remote: socket.remoteAddress }
              : { err: 'no client certificate', remote: socket.remoteAddress };
            refusals.warn(`certificate:${fields.err}`, fields, 'TLS client certificate refused');
            socket.destroy();
            return;
          }
          handleSocket(socket, underTls.get(peer(socket)) ?? socket);
        },
      )
    : undefined;
  let tlsPort = 0;
  if (secure && tlsOptions) {
    secure.maxConnections = maxSockets;
    secure.on('connection', (raw: Socket) => {
      const key = peer(raw);
      underTls.set(key, raw);
      raw.once('close', () => underTls.delete(key));
      gate.admit(raw);
    });
    secure.on('tlsClientError', (error: NodeJS.ErrnoException, socket) => {
      const reason = (error as { reason?: string }).reason ?? error.message;
      refusals.warn(`handshake:${error.code ?? reason}`, { err: reason, remote: socket.remoteAddress }, 'TLS handshake failed');
    });
    await listen(secure, tlsOptions.port, options.host);
    tlsPort = (secure.address() as { port: number }).port;
  }

  let wsPort = 0;
  const http = options.wsPort > 0 ? createHttpServer() : undefined;
  if (http) {
    const wss = new WebSocketServer({ server: http, maxPayload: options.maxPacketBytes + 5 });
    wss.on('connection', (websocket, req) => {
      const stream = createWebSocketStream(websocket);
      stream.on('error', () => undefined);
      socketOf.set(stream, req.socket);
      aedes.handle(stream, req);
    });
    http.on('connection', (socket: Socket) => gate.admit(socket));
    http.maxConnections = maxSockets;
    await listen(http, options.wsPort, options.host);
    wsPort = (http.address() as { port: number }).port;
  }
  logger.info(
    {
      mqtt: `mqtt://${options.host}:${port}`,
      ws: wsPort ? `ws://${options.host}:${wsPort}` : undefined,
      mqtts: tlsPort ? `mqtts://${options.host}:${tlsPort}` : undefined,
      clientCertificates: tlsOptions?.ca !== undefined ? 'required' : undefined,
      logins: Boolean(logins),
    },
    'embedded broker listening',
  );

  const stats = (): EmbeddedBrokerStats => {
    const held = retained.total();
    return {
      retainedRefused: { ...retainedRefused },
      retainedTopics: held.topics,
      retainedBytes: held.bytes,
      connectsRefused: { ...connectsRefused },
      pendingClosed: gate.evicted,
      pending: gate.size,
    };
  };
  return {
    port,
    wsPort,
    tlsPort,
    stats,
    metrics: () => brokerMetrics(stats()),
    close: async () => {
      // Stop accepting; the servers report closed once aedes has ended the connections they hold.
      const closed = [tcp, ...(secure ? [secure] : [])].map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      if (http) {
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      }
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await Promise.all(closed);
    },
  };
}

function listen(
  server: { once(event: 'error', listener: (error: Error) => void): unknown; listen(port: number, host: string, callback: () => void): unknown },
  port: number,
  host: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

export function brokerMetrics(s: EmbeddedBrokerStats): string {
  return new PrometheusText()
    .counter(
      'hostpulse_broker_retained_refused_total',
      'Retained messages refused (acknowledged and dropped) because their login was over its quota, by reason.',
      s.retainedRefused,
    )
    .gauge('hostpulse_broker_retained_topics', 'Retained topics held.', s.retainedTopics)
    .gauge('hostpulse_broker_retained_bytes', 'Bytes of retained topics and payloads held.', s.retainedBytes)
    .counter('hostpulse_broker_connects_refused_total', 'CONNECTs refused before authentication, by reason.', s.connectsRefused)
    .counter('hostpulse_broker_pending_closed_total', 'Connections closed while awaiting CONNECT, to make room for newer ones.', s.pendingClosed)
    .gauge('hostpulse_broker_pending_connections', 'Connections awaiting CONNECT.', s.pending)
    .toString();
}

/**
 * The socket as aedes sees it: reads pass through the size guard, writes go to the socket, one
 * socket write per packet: aedes corks the stream while it writes a packet's pieces (header,
 * topic, payload), and they reach `writev` together. (Duplex.from passed each piece on alone: a
 * 115-byte PUBLISH took up to 6 writes.)
 */
function duplexOf(socket: Socket, guard: PacketSizeLimit): Duplex {
  const stream = new Duplex({
    read: () => void guard.resume(),
    write: (chunk: Buffer, _encoding, callback) => void socket.write(chunk, callback),
    writev: (chunks, callback) =>
      void socket.write(chunks.length === 1 ? (chunks[0]?.chunk as Buffer) : Buffer.concat(chunks.map((c) => c.chunk as Buffer)), callback),
    final: (callback) => void socket.end(callback),
    destroy: (error, callback) => {
      socket.destroy();
      callback(error);
    },
  });
  guard.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) guard.pause();
  });
  guard.on('end', () => stream.push(null));
  socket.once('close', () => stream.destroy());
  socket.pipe(guard);
  return stream;
}
