/*
 * Options that hold a key or certificate (JWT_PUBLIC_KEY, STOMP_TLS_CERT,
 * STOMP_TLS_KEY) take either the PEM text itself — with `\n` escapes, as an
 * environment variable often carries it — or a path to a PEM file.
 */
import { readFileSync } from 'node:fs';

export function readPem(value: string): string {
  if (value.includes('-----BEGIN')) return value.replace(/\\n/g, '\n');
  return readFileSync(value, 'utf8');
}
