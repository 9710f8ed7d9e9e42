/*
 * The `stompbox` binary as users run it: a child process (`node
 * bin/stompbox.js ...`) against a node started in this spec. Readiness of a
 * `tail` is its "subscribed" line on stderr (printed after the SUBSCRIBE's
 * RECEIPT), never a delay.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../lib/config.js';
import { freePort } from '../helpers/free-port.js';
import { startNode, type RunningNode } from '../../lib/node.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/stompbox.js', import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const key of ['STOMPBOX_URL', 'STOMPBOX_USER', 'STOMPBOX_PASSWORD', 'STOMPBOX_TOKEN']) if (!(key in extra)) delete env[key];
  return env;
}

function run(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cliEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

interface Tail {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first `n` stdout lines. */
  nextLines(n: number): Promise<string[]>;
  result: Promise<Result>;
}

/** Starts `stompbox tail ...` and resolves once it is subscribed (its stderr status line). */
async function startTail(args: string[]): Promise<Tail> {
  const child = spawn(process.execPath, [BIN, 'tail', ...args], { cwd: ROOT, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const wake of waiters.splice(0)) wake();
  });
  const result = new Promise<Result>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('subscribed to')) resolve();
    });
    void result.then((r) => reject(new Error(`tail exited (${r.code}) before subscribing: ${r.stderr}`)));
  });
  const nextLines = (n: number) =>
    new Promise<string[]>((resolve, reject) => {
      const check = () => {
        if (lines.length >= n) resolve(lines.slice(0, n));
        else waiters.push(check);
      };
      void result.then((r) => {
        if (lines.length < n) reject(new Error(`tail exited (${r.code}) after ${lines.length} lines: ${r.stderr}`));
      });
      check();
    });
  return { child, lines, nextLines, result };
}

function expectOneLineError(result: Result, code: number, pattern: RegExp): void {
  expect(result.code, result.stderr).to.equal(code);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines, result.stderr).to.have.length(1);
  expect(lines[0]).to.match(/^stompbox: /);
  expect(lines[0]).to.match(pattern);
}

describe('stompbox CLI (bin/stompbox.js as a child process)', function () {
  this.timeout(30_000);
  let node: RunningNode;
  let url: string;
  const tails: Tail[] = [];

  before(async () => {
    node = await startNode(loadConfig({}, [], { port: 0, logLevel: 'silent' }));
    url = node.url;
  });

  afterEach(() => {
    for (const tail of tails.splice(0)) if (tail.child.exitCode === null) tail.child.kill('SIGKILL');
  });

  after(async () => {
    await node.stop();
  });

  describe('--help', () => {
    it('prints the commands with --help and exits 0', async () => {
      const result = await run(['--help']);
      expect(result.code).to.equal(0);
      expect(result.stdout).to.match(/usage: stompbox <command>/);
      for (const command of ['send', 'tail', 'inbox']) expect(result.stdout).to.include(command);
    });

    for (const command of ['send', 'tail', 'inbox']) {
      it(`prints ${command}'s options with "${command} --help" and "help ${command}"`, async () => {
        for (const args of [[command, '--help'], ['help', command]]) {
          const result = await run(args);
          expect(result.code, args.join(' ')).to.equal(0);
          expect(result.stdout).to.match(new RegExp(`^usage: stompbox ${command} `));
          expect(result.stdout).to.include('--url');
          expect(result.stdout).to.include('--user');
          expect(result.stdout).to.include('--token');
        }
      });
    }

    it('without a command prints the usage on stderr and exits 2', async () => {
      const result = await run([]);
      expect(result.code).to.equal(2);
      expect(result.stderr).to.match(/usage: stompbox/);
    });
  });

  describe('send and tail over STOMP', () => {
    it('tail prints what send sends to the user, one line per message, in order', async () => {
      const tail = await startTail(['--url', url, '--user', 'bob', '--count', '3', '/user/queue/reply']);
      tails.push(tail);
      for (const body of ['hello', 'two\nlines', 'third']) {
        const sent = await run(['send', '--url', url, '--user', 'alice', '--to', 'bob', '--destination', '/queue/reply', body]);
        expect(sent.code, sent.stderr).to.equal(0);
      }
      expect(await tail.nextLines(3)).to.deep.equal(['hello', 'two\\nlines', 'third']);
      const result = await tail.result;
      expect(result.code, result.stderr).to.equal(0);
    });

    it('send reads the body from standard input; tail --json and --with-sender show the sender', async () => {
      const tail = await startTail(['--url', url, '-u', 'carol', '-n', '1', '--json', '/user/queue/reply']);
      tails.push(tail);
      const sent = await run(['send', '--url', url, '-u', 'dave', '--to', 'carol', '-d', '/queue/reply', '-H', 'x-trace:42'], { stdin: 'from stdin' });
      expect(sent.code, sent.stderr).to.equal(0);
      const [line] = await tail.nextLines(1);
      const message = JSON.parse(line!) as { body: string; sender: string; destination: string; headers: Record<string, string> };
      expect(message).to.include({ body: 'from stdin', sender: 'dave', destination: '/user/queue/reply' });
      expect(message.headers['x-trace']).to.equal('42');

      const plain = await startTail(['--url', url, '-u', 'carol', '-n', '1', '--with-sender', '/user/queue/reply']);
      tails.push(plain);
      await run(['send', '--url', url, '-u', 'dave', '--to', 'carol', '-d', '/queue/reply', 'hi']);
      expect(await plain.nextLines(1)).to.deep.equal(['dave: hi']);
    });

    it('tail on a topic receives what send publishes to it', async () => {
      const tail = await startTail(['--url', url, '-u', 'ops', '-n', '1', '/topic/alerts']);
      tails.push(tail);
      const sent = await run(['send', '--url', url, '-u', 'monitor', '-d', '/topic/alerts', 'disk full']);
      expect(sent.code, sent.stderr).to.equal(0);
      expect(await tail.nextLines(1)).to.deep.equal(['disk full']);
    });

    it('tail stops cleanly on Ctrl-C (SIGINT) with status 0', async () => {
      const tail = await startTail(['--url', url, '-u', 'erin', '/user/queue/reply']);
      tails.push(tail);
      tail.child.kill('SIGINT');
      const result = await tail.result;
      expect(result.code, result.stderr).to.equal(0);
    });

    it('tail drains what was stored while the user was away, oldest first; what --count left is kept', async () => {
      for (const body of ['while away 1', 'while away 2', 'while away 3']) {
        const sent = await run(['send', '--url', url, '-u', 'alice', '--to', 'frank', '-d', '/queue/reply', body]);
        expect(sent.code, sent.stderr).to.equal(0);
      }
      const first = await run(['tail', '--url', url, '-u', 'frank', '-n', '2', '-q', '/user/queue/reply']);
      expect(first.code, first.stderr).to.equal(0);
      expect(first.stdout).to.equal('while away 1\nwhile away 2\n');
      // The third was delivered to the first tail too, but never printed nor acknowledged: it is still there.
      const second = await run(['tail', '--url', url, '-u', 'frank', '-n', '1', '-q', '/user/queue/reply']);
      expect(second.stdout).to.equal('while away 3\n');
    });
  });

  describe('inbox and send --http (HTTP API)', () => {
    it('send --http answers with the message id; the live tail receives it', async () => {
      const tail = await startTail(['--url', url, '-u', 'gina', '-n', '1', '--json', '/user/queue/reply']);
      tails.push(tail);
      const sent = await run(['send', '--http', '--url', url, '-u', 'hank', '--to', 'gina', '-d', '/queue/reply', 'over http']);
      expect(sent.code, sent.stderr).to.equal(0);
      const id = sent.stdout.trim();
      expect(id).to.have.length.greaterThan(0);
      const message = JSON.parse((await tail.nextLines(1))[0]!) as { body: string; sender: string; messageId: string };
      expect(message).to.include({ body: 'over http', sender: 'hank', messageId: id });
    });

    it('inbox lists what is stored for the logged-in user, in order; --pull takes it', async () => {
      for (const body of ['one', 'two']) {
        const sent = await run(['send', '--url', url, '-u', 'alice', '--to', 'ivan', '-d', '/queue/reply', body]);
        expect(sent.code, sent.stderr).to.equal(0);
      }
      const look = await run(['inbox', 'ivan', '--url', url, '-d', '/queue/reply', '--with-sender']);
      expect(look.code, look.stderr).to.equal(0);
      expect(look.stdout).to.equal('alice: one\nalice: two\n');

      const pulled = await run(['inbox', '--url', url, '--user', 'ivan', '--pull', '-d', '/queue/reply', '--json']);
      expect(pulled.code, pulled.stderr).to.equal(0);
      const bodies = pulled.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { body: string }).body);
      expect(bodies).to.deep.equal(['one', 'two']);

      const after = await run(['inbox', 'ivan', '--url', url, '-d', '/queue/reply']);
      expect(after.code, after.stderr).to.equal(0);
      expect(after.stdout).to.equal('');
    });
  });

  describe('failures: a non-zero status and one line on stderr', () => {
    it('connection refused (STOMP)', async () => {
      const port = await freePort();
      const result = await run(['send', '--url', `http://127.0.0.1:${port}`, '-u', 'alice', '-d', '/topic/x', 'x']);
      expectOneLineError(result, 1, new RegExp(`cannot connect to ws://127\\.0\\.0\\.1:${port}/stomp: .*ECONNREFUSED`));
    });

    it('connection refused (HTTP)', async () => {
      const port = await freePort();
      const result = await run(['inbox', 'bob', '--url', `http://127.0.0.1:${port}`, '-d', '/queue/reply']);
      expectOneLineError(result, 1, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    });

    it('an ERROR frame (unknown destination)', async () => {
      const result = await run(['send', '--url', url, '-u', 'alice', '-d', '/nowhere/x', 'x']);
      expectOneLineError(result, 1, /ERROR from server: ERR_UNKNOWN_DESTINATION/);
    });

    it("an ERROR frame (subscribing to another user's destination)", async () => {
      const result = await run(['tail', '--url', url, '-u', 'mallory', '/user/alice/queue/reply']);
      expectOneLineError(result, 1, /ERR_FORBIDDEN/);
    });

    it('an HTTP 4xx (send --http to a destination that is not a user destination)', async () => {
      const result = await run(['send', '--http', '--url', url, '-u', 'alice', '--to', 'bob', '-d', 'no-slash', 'x']);
      // The CLI refuses it before the call; a destination the API refuses reaches it:
      expectOneLineError(result, 2, /must start with \//);
      const refused = await run(['send', '--http', '--url', url, '-u', 'alice', '--to', 'bob', '-d', '/nowhere/x', 'x']);
      expectOneLineError(refused, 1, /^stompbox: HTTP 4\d\d /);
    });

    it('usage mistakes exit 2: unknown option, missing destination, reading another user\'s inbox', async () => {
      expectOneLineError(await run(['send', '--bogus']), 2, /Unknown option '--bogus'/);
      expectOneLineError(await run(['send', '--url', url, '-u', 'alice', 'x']), 2, /--destination is required/);
      expectOneLineError(await run(['inbox', 'bob', '--user', 'alice', '--url', url]), 2, /your own inbox/);
      expectOneLineError(await run(['frobnicate']), 2, /unknown command "frobnicate"/);
    });

    describe('with static users', () => {
      let guarded: RunningNode;
      before(async () => {
        guarded = await startNode(loadConfig({}, [], { port: 0, logLevel: 'silent', authMode: 'static', authUsers: 'alice:secret' }));
      });
      after(async () => {
        await guarded.stop();
      });

      it('a wrong password is an ERROR frame over STOMP and an HTTP 401 over the API', async () => {
        const stomp = await run(['send', '--url', guarded.url, '-u', 'alice', '-p', 'wrong', '-d', '/topic/x', 'x']);
        expectOneLineError(stomp, 1, /ERR_AUTH_FAILED/);
        const http = await run(['inbox', 'alice', '--url', guarded.url, '-p', 'wrong', '-d', '/queue/reply']);
        expectOneLineError(http, 1, /^stompbox: HTTP 401 /);
        const good = await run(['send', '--url', guarded.url, '-u', 'alice', '-p', 'secret', '-d', '/topic/x', 'x']);
        expect(good.code, good.stderr).to.equal(0);
      });
    });
  });
});
