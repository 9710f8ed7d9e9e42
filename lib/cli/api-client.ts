/*
 * The HTTP API as the CLI uses it. Identity: `--token` goes as
 * `Authorization: Bearer`; otherwise `--user` (and `--password`) log in
 * through `POST /api/login`, whose answer carries a session token sent as a
 * bearer token from then on (or, from a server that answers without one, the
 * `sb_session` cookie it sets, as a browser would).
 */
import { CliError, describeError } from './errors.js';
import { apiErrorText } from './stomp-client.js';

export interface ApiCredentials {
  user?: string;
  password?: string;
  token?: string;
}

export class ApiClient {
  private cookie: string | undefined;
  private bearer: string | undefined;

  constructor(
    /** `http://host:port` */
    private readonly base: string,
    private readonly credentials: ApiCredentials,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Calls the API as the configured user; rejects with `HTTP <status> <code>: <message>` on 4xx/5xx. */
  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.credentials.token !== undefined) headers.Authorization = `Bearer ${this.credentials.token}`;
    else {
      if (this.credentials.user === undefined) throw new CliError('--user (or --token) is required to call the API');
      if (this.cookie === undefined && this.bearer === undefined) await this.login();
      if (this.bearer !== undefined) headers.Authorization = `Bearer ${this.bearer}`;
      else headers.Cookie = this.cookie!;
    }
    const response = await this.request(method, path, headers, body);
    return (await this.json(response)) as T;
  }

  private async login(): Promise<void> {
    const body: Record<string, string> = { user: this.credentials.user! };
    if (this.credentials.password !== undefined) body.password = this.credentials.password;
    const response = await this.request('POST', '/api/login', { Accept: 'application/json' }, body);
    const answer = (await this.json(response)) as { token?: unknown } | undefined;
    // The login answer's token, sent as a bearer token, is not ambient (no CSRF checks apply); the cookie is the fallback.
    if (answer && typeof answer.token === 'string') {
      this.bearer = answer.token;
      return;
    }
    const cookies = response.headers.getSetCookie().map((c) => c.split(';')[0]!.trim());
    const session = cookies.filter((c) => c.startsWith('sb_session='));
    if (session.length === 0) throw new CliError(`POST ${this.base}/api/login set no sb_session cookie`);
    this.cookie = cookies.join('; ');
  }

  private async request(method: string, path: string, headers: Record<string, string>, body: unknown): Promise<Response> {
    const init: RequestInit = { method, headers: { ...headers }, signal: AbortSignal.timeout(this.timeoutMs) };
    if (body !== undefined) {
      (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    try {
      return await fetch(this.base + path, init);
    } catch (error) {
      if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
        throw new CliError(`${method} ${this.base}${path}: no answer within ${this.timeoutMs} ms`);
      }
      throw new CliError(`cannot reach ${this.base}: ${describeError(error).replace(/^fetch failed:? ?/, '') || 'fetch failed'}`);
    }
  }

  private async json(response: Response): Promise<unknown> {
    const text = await response.text();
    if (!response.ok) {
      const detail = apiErrorText(text);
      throw new CliError(`HTTP ${response.status}${detail ? ` ${detail}` : ''} (${new URL(response.url).pathname})`);
    }
    if (text === '') return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new CliError(`HTTP ${response.status}: the answer is not JSON (${new URL(response.url).pathname})`);
    }
  }
}
