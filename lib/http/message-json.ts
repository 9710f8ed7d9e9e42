import { isUtf8 } from 'node:buffer';
import type { BrokerMessage } from '../core/message.js';

/**
 * A message as the API shows it. The body is UTF-8 text when it is valid
 * UTF-8, else base64 with `"encoding": "base64"`.
 */
export interface MessageJson {
  id: string;
  destination: string;
  headers: Record<string, string>;
  body: string;
  encoding?: 'base64';
  sender: string | null;
  timestamp: number;
}

export function messageToJson(message: BrokerMessage): MessageJson {
  const text = isUtf8(message.body);
  const json: MessageJson = {
    id: message.id,
    destination: message.destination,
    headers: { ...message.headers },
    body: text ? message.body.toString('utf8') : message.body.toString('base64'),
    sender: message.sender ?? null,
    timestamp: message.timestamp,
  };
  if (!text) json.encoding = 'base64';
  return json;
}

/** The body as a string: the text when valid UTF-8, else base64 (what the seed's pull route returns). */
export function bodyString(body: Buffer): string {
  return isUtf8(body) ? body.toString('utf8') : body.toString('base64');
}
