/*
 * The targets the runner knows, by name. RabbitMQ Web-STOMP is the
 * reference every other figure is divided by.
 *
 * Slots:
 *   stompbox-1         stompbox, one node                 (peers/stompbox.ts — provisional wiring)
 *   stompbox-2-redis   stompbox, two nodes over Redis     (peers/stompbox.ts — provisional wiring)
 *   socketio-1         socket.io, one node                (peers/socketio.ts)
 *   socketio-2-redis   socket.io, two nodes, redis-adapter (peers/socketio.ts)
 */
import type { BenchTarget } from './lib/target.js';
import { createRabbitMqTarget, type RabbitMqPeerOptions } from './peers/rabbitmq.js';
import { createSocketIoTarget } from './peers/socketio.js';
import { createStompboxTarget } from './peers/stompbox.js';

export const REFERENCE_TARGET = 'rabbitmq';

export interface TargetSettings {
  rabbitmq: Partial<RabbitMqPeerOptions>;
}

export const TARGET_FACTORIES: Readonly<Record<string, (settings: TargetSettings) => BenchTarget>> = {
  rabbitmq: (settings) => createRabbitMqTarget(settings.rabbitmq),
  'stompbox-1': () => createStompboxTarget(1),
  'stompbox-2-redis': () => createStompboxTarget(2),
  'socketio-1': () => createSocketIoTarget(1),
  'socketio-2-redis': () => createSocketIoTarget(2),
};

export function createTargets(names: string, settings: TargetSettings): BenchTarget[] {
  const list = names === 'all' ? Object.keys(TARGET_FACTORIES) : names.split(',').map((name) => name.trim());
  return list.map((name) => {
    const factory = TARGET_FACTORIES[name];
    if (factory === undefined) throw new Error(`unknown target "${name}"; known: ${Object.keys(TARGET_FACTORIES).join(', ')}`);
    return factory(settings);
  });
}
