/**
 * The embedded MQTT broker of `hostpulse up` (the one place aedes and ws are imported), for a
 * machine without Docker. aedes' defaults are for a lab, so: a connection limit, a short CONNECT
 * timeout, a packet size limit, and, when logins are configured, Mosquitto's password file format
 * and the same access rules as mosquitto/acl (common/broker-acl.ts). Without logins it accepts
 * anonymous clients, and the caller keeps it on the loopback interface. An MQTT-over-TLS listener,
 * when configured, serves the same broker with the same logins, rules and limits; with a CA it
 * requires client certificates signed by it.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Duplex } from 'node:stream';
import { Aedes, type AuthenticateError } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { mayPublish, mayRead } from './broker-acl.js';
import type { Logger } from './logger.js';
import { verifyPassword } from './mosquitto-passwd.js';
import { PACKET_TOO_LARGE, PacketSizeLimit } from './mqtt-size-limit.js';
import { ThrottledLog } from './throttle.js';

export interface EmbeddedBrokerOptions {
  readonly host: string;
  readonly port: number;
  /** MQTT over WebSocket; 0 turns it off. */
  readonly wsPort: number;
  readonly maxConnections: number;
  readonly maxPacketBytes: number;
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
  close(): Promise<void>;
}

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions, logger: Logger): Promise<EmbeddedBroker> {
  const logins = options.logins;
  const users = new WeakMap<object, string>();
  const aedes = await Aedes.createBroker({
    id: 'hostpulse-up',
    connectTimeout: 5000,
    maxClientsIdLength: 128,
    heartbeatInterval: 60_000,
    ...(logins
      ? {
          authenticate: (client, username, password, done) => {
            const lines = username === undefined ? [] : logins(username);
            if (username === undefined || !password || !lines.some((line) => verifyPassword(line, password.toString()))) {
              done(authError('bad user name or password', 4), false);
              return;
            }
            users.set(client, username);
            done(null, true);
          },
          authorizePublish: (client, packet, callback) => {
            const user = client ? users.get(client) : undefined;
            // As Mosquitto does with MQTT 3.1.1: a denied publish is acknowledged and dropped (aedes
            // would disconnect the client, which a QoS 1 client answers by resending it forever).
            // It is diverted to a "$" topic that no login may read, and never retained.
            if (client && (user === undefined || !mayPublish(user, packet.topic))) {
              logger.debug({ user, topic: packet.topic }, 'publish denied');
              packet.topic = '$hostpulse/denied';
              packet.payload = Buffer.alloc(0);
              packet.retain = false;
            }
            callback(null);
          },
          authorizeForward: (client, packet) => {
            const user = users.get(client);
            return user !== undefined && mayRead(user, packet.topic) ? packet : null;
          },
        }
      : {}),
  });
  const tcp: Server = createServer((socket: Socket) => handleSocket(socket));
  tcp.maxConnections = options.maxConnections;
  function handleSocket(socket: Socket): void {
    const guard = new PacketSizeLimit(options.maxPacketBytes);
    guard.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === PACKET_TOO_LARGE) logger.warn({ err: error.message, remote: socket.remoteAddress }, 'connection closed: packet too large');
      socket.destroy();
    });
    socket.on('error', () => undefined);
    aedes.handle(duplexOf(socket, guard));
  }

  await listen(tcp, options.port, options.host);
  const port = (tcp.address() as { port: number }).port;

  // The same handling as TCP, on the decrypted stream; a failed handshake never reaches aedes.
  const tlsOptions = options.tls;
  const refusals = new ThrottledLog(logger, 60_000);
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
          handleSocket(socket);
        },
      )
    : undefined;
  let tlsPort = 0;
  if (secure && tlsOptions) {
    secure.maxConnections = options.maxConnections;
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
      aedes.handle(stream, req);
    });
    http.maxConnections = options.maxConnections;
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

  return {
    port,
    wsPort,
    tlsPort,
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

function listen(server: { once(event: 'error', listener: (error: Error) => void): unknown; listen(port: number, host: string, callback: () => void): unknown }, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

/** The socket as aedes sees it: reads pass through the size guard, writes go straight to the socket. */
function duplexOf(socket: Socket, guard: PacketSizeLimit): Duplex {
  socket.pipe(guard);
  return Duplex.from({ readable: guard, writable: socket });
}
