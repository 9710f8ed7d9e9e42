import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout (pino: fast, structured, standard in Node services). */
export function createLogger(level: string, nodeId?: string): Logger {
  return pino({ level, base: nodeId ? { node: nodeId } : {} });
}
