import { SUPPORTED_VERSIONS, type StompFrame, type StompVersion } from '../../stomp/index.js';
import { BrokerError } from '../../core/errors.js';
import type { Session } from '../session.js';

const SERVER = 'stompbox/0.1.0';

/**
 * CONNECT / STOMP (STOMP 1.2 "CONNECT or STOMP Frame"): version negotiation
 * through `accept-version` (absent means 1.0), authentication, heart-beat
 * negotiation; answered with CONNECTED.
 */
export async function handleConnect(session: Session, frame: StompFrame): Promise<void> {
  const version = negotiateVersion(frame.headers['accept-version'], session.transport.subprotocol);
  session.version = version;
  const heartbeat = session.negotiateHeartbeat(frame.headers['heart-beat']);

  const authorization = frame.headers.Authorization ?? frame.headers.authorization;
  const bearer = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
  const credentials = { login: frame.headers.login, passcode: frame.headers.passcode, token: bearer, transportUser: session.transport.user, transportClaims: session.transport.claims };
  const auth = session.broker.auth;
  const identity = auth.identify ? await auth.identify(credentials) : { user: await auth.authenticate(credentials) };
  if (session.state === 'closed') return;
  const user = identity.user;
  session.claims = identity.claims;
  const { maxConnectionsPerUser, redisUrl } = session.broker.config;
  if (!(await session.broker.sessionCounts.acquire(user))) {
    const where = redisUrl ? 'in the cluster' : 'on this node';
    throw new BrokerError('ERR_TOO_MANY_CONNECTIONS', `user "${user}" has ${maxConnectionsPerUser} sessions ${where} (MAX_CONNECTIONS_PER_USER)`);
  }
  // Counted from here: released when the session ends, or now if it ended meanwhile.
  if (!session.open) return void session.broker.sessionCounts.release(user);
  session.user = user;
  session.state = 'connected';
  session.parser.version = version;
  await session.broker.sessionConnected(session);
  await session.broker.recipients?.loggedIn(user);
  // Ended while presence was recorded (the socket went away): nothing to answer or schedule.
  if (!session.connected) return;
  session.sendFrame({
    command: 'CONNECTED',
    headers: { version, 'heart-beat': heartbeat, server: SERVER, session: session.id, 'user-name': user },
  });
  session.lastSentAt = session.broker.wheel.now;
  session.scheduleHeartbeat();
  session.sendReceipt(frame);
}

function negotiateVersion(acceptVersion: string | undefined, subprotocol: string | undefined): StompVersion {
  let offered: string[] = acceptVersion === undefined ? ['1.0'] : acceptVersion.split(',').map((v) => v.trim());
  // A WebSocket subprotocol such as v11.stomp caps the version.
  const cap = subprotocol ? /^v1(\d)\.stomp$/.exec(subprotocol) : null;
  if (cap) offered = offered.filter((v) => v <= `1.${cap[1]}`);
  for (const version of [...SUPPORTED_VERSIONS].reverse()) {
    if (offered.includes(version)) return version;
  }
  throw new BrokerError('ERR_UNSUPPORTED_VERSION', `supported protocol versions are ${SUPPORTED_VERSIONS.join(', ')}`);
}
