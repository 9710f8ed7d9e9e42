/*
 * Request bodies of the API: JSON objects (and, where the seed's page posts
 * forms, application/x-www-form-urlencoded), read by @koa/bodyparser with a
 * byte limit, then checked field by field. Every failure is a BrokerError
 * with a stable code, which the error middleware turns into 4xx JSON.
 */
import type { Context } from 'koa';
import { BrokerError } from '../core/errors.js';

export type Fields = Record<string, unknown>;

export type BodyKind = 'json' | 'form';

/** The parsed body as an object; ERR_UNSUPPORTED_MEDIA_TYPE unless its content type is one of `kinds`. */
export function readFields(ctx: Context, kinds: readonly BodyKind[] = ['json']): Fields {
  const isJson = ctx.request.is('application/json') === 'application/json';
  const isForm = ctx.request.is('application/x-www-form-urlencoded') === 'application/x-www-form-urlencoded';
  if (!((isJson && kinds.includes('json')) || (isForm && kinds.includes('form')))) {
    const accepted = kinds.map((kind) => (kind === 'json' ? 'application/json' : 'application/x-www-form-urlencoded')).join(' or ');
    throw new BrokerError('ERR_UNSUPPORTED_MEDIA_TYPE', `the request body must be ${accepted}`);
  }
  const body: unknown = ctx.request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BrokerError('ERR_BAD_REQUEST', 'the request body must be a JSON object');
  }
  return body as Fields;
}

export function requireString(fields: Fields, name: string, maxLength = 1024): string {
  const value = fields[name];
  if (value === undefined || value === null || value === '') throw new BrokerError('ERR_BAD_REQUEST', `missing field "${name}"`);
  return checkString(value, name, maxLength);
}

export function optionalString(fields: Fields, name: string, maxLength = 1024): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  return checkString(value, name, maxLength);
}

/** A positive integer from a JSON number, a form or a query string; `fallback` when absent. */
export function optionalCount(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new BrokerError('ERR_BAD_REQUEST', `field "${name}" must be a positive integer`);
  return Math.min(n, max);
}

function checkString(value: unknown, name: string, maxLength: number): string {
  if (typeof value !== 'string') throw new BrokerError('ERR_BAD_REQUEST', `field "${name}" must be a string`);
  if (value.length > maxLength) throw new BrokerError('ERR_BAD_REQUEST', `field "${name}" is longer than ${maxLength} characters`);
  return value;
}
