// Running the C test programs of libvolli (tests/client/, built into
// $VOLLI_BUILD_DIR/tests/client/) from the integration tests.
// Driver wraps client_driver: one libvolli client whose events and request results arrive as
// JSON lines, with bounded waits like lib/client.mjs. runProgram() runs a program to completion.
// Only the PIDs spawned here are ever signalled; killAllDrivers() (from an after() hook) and a
// process 'exit' handler make sure none outlives the test file.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { scaled, withTimeout } from './util.mjs';

export const BUILD_DIR = path.resolve(process.env.VOLLI_BUILD_DIR || 'build');

/** Path of a test program, e.g. clientBin('client_driver'); throws if it was not built. */
export function clientBin(name) {
    const p = path.join(BUILD_DIR, 'tests', 'client', name);
    if (!fs.existsSync(p)) {
        throw new Error(`${p} not found: build the libvolli test programs (set VOLLI_BUILD_DIR)`);
    }
    return p;
}

const live = new Set();

process.on('exit', () => {
    for (const d of live) {
        try {
            d.proc.kill('SIGKILL');
        } catch {
            /* gone */
        }
    }
});

/** The child environment: ours without VOLLI_* (meant for the test runner, not the program). */
function env(extra = {}) {
    const e = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VOLLI_')) e[k] = v;
    return { ...e, ...extra };
}

export class Driver {
    /**
     * Starts client_driver for user `user` with key file `key` (created when missing) on the
     * server URLs. opts: requestTimeout, idleTimeout, connectTimeout, backoffInitial,
     * backoffMax (ms), log (library log on stderr).
     */
    constructor(urls, { user, key, requestTimeout, idleTimeout, connectTimeout, backoffInitial,
                        backoffMax, log = false } = {}) {
        const args = user ? ['--user', user, '--key', key] : []; /* none: connect-only */
        const num = { '--request-timeout': requestTimeout, '--idle-timeout': idleTimeout,
                      '--connect-timeout': connectTimeout, '--backoff-initial': backoffInitial,
                      '--backoff-max': backoffMax };
        for (const [flag, v] of Object.entries(num)) if (v !== undefined) args.push(flag, String(v));
        if (log || process.env.VOLLI_IT_ECHO === '1') args.push('--log');
        this.user = user;
        this.proc = spawn(clientBin('client_driver'), [...args, ...urls],
                          { env: env(), stdio: ['pipe', 'pipe', 'pipe'] });
        this.pid = this.proc.pid;
        this.lines = []; // every parsed line, in order
        this.queue = [];
        this.waiters = [];
        this.stderr = '';
        this.exitInfo = null;
        live.add(this);
        let partial = '';
        this.proc.stdout.setEncoding('utf8');
        this.proc.stdout.on('data', (chunk) => {
            partial += chunk;
            let i;
            while ((i = partial.indexOf('\n')) >= 0) {
                const line = partial.slice(0, i);
                partial = partial.slice(i + 1);
                this.onLine(line);
            }
        });
        this.proc.stderr.setEncoding('utf8');
        this.proc.stderr.on('data', (chunk) => {
            this.stderr += chunk;
            if (process.env.VOLLI_IT_ECHO === '1') process.stderr.write(`[driver ${this.pid}] ${chunk}`);
        });
        this.proc.stdin.on('error', () => {}); // writing after exit: reported by the waits
        this.exited = new Promise((resolve) => {
            this.proc.on('close', (code, signal) => {
                this.exitInfo = { code, signal };
                live.delete(this);
                for (const w of this.waiters.splice(0)) {
                    w.reject(new Error(`client_driver exited (${code}, ${signal}) before ` +
                                       `${w.what}\n${this.describe()}`));
                }
                resolve(this.exitInfo);
            });
        });
    }

    onLine(line) {
        let msg;
        try {
            msg = JSON.parse(line);
        } catch {
            msg = { unparsable: line };
        }
        this.lines.push(msg);
        this.queue.push(msg);
        this.waiters = this.waiters.filter((w) => {
            if (!w.pred(msg)) return true;
            this.queue.splice(this.queue.indexOf(msg), 1);
            w.resolve(msg);
            return false;
        });
    }

    describe() {
        return `driver output:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}\n` +
               `driver stderr tail:\n${this.stderr.slice(-3000)}`;
    }

    /** The next queued or future line matching pred (removed from the queue). */
    next(pred, ms = scaled(5000), what = 'a matching line') {
        const hit = this.queue.find(pred);
        if (hit) {
            this.queue.splice(this.queue.indexOf(hit), 1);
            return Promise.resolve(hit);
        }
        if (this.exitInfo) {
            return Promise.reject(new Error(`client_driver already exited before ${what}\n` +
                                            this.describe()));
        }
        let waiter;
        const p = new Promise((resolve, reject) => {
            waiter = { pred, resolve, reject, what };
            this.waiters.push(waiter);
        });
        return withTimeout(p, ms, `${what}\n${this.describe()}`).finally(() => {
            this.waiters = this.waiters.filter((w) => w !== waiter);
        });
    }

    /** The next event of the given type (and matching pred). */
    event(type, pred = () => true, ms = scaled(5000)) {
        return this.next((m) => m.event === type && pred(m), ms, `event "${type}"`);
    }

    /** Sends a command; returns its result line (immediate or from the callback). */
    async request(cmd, ms = scaled(5000)) {
        Driver.tags = (Driver.tags || 0) + 1;
        const tag = `t${Driver.tags}`;
        this.send({ ...cmd, tag });
        return this.next((m) => m.result !== undefined && m.tag === tag, ms,
                         `the result of ${JSON.stringify(cmd)}`);
    }

    send(cmd) {
        this.proc.stdin.write(`${JSON.stringify(cmd)}\n`);
    }

    /** Waits ms and fails if any queued line matches pred. */
    async expectNone(ms, pred, what) {
        await new Promise((r) => setTimeout(r, ms));
        const hit = this.queue.find(pred);
        assert.equal(hit, undefined, `expected ${what}, got ${JSON.stringify(hit)}\n` +
                     this.describe());
    }

    /** Removes and returns every queued line matching pred. */
    take(pred) {
        const got = this.queue.filter(pred);
        this.queue = this.queue.filter((m) => !pred(m));
        return got;
    }

    /** Waits for "registered" (after "connected"); returns the registered event. */
    async registered(ms = scaled(5000)) {
        await this.event('connected', () => true, ms);
        return this.event('registered', () => true, ms);
    }

    /**
     * Graceful close: {"cmd":"close"}, then the process must print {"event":"exit"} with a
     * clean loop and exit 0 (under ASan, LeakSanitizer makes a leak a non-zero exit).
     */
    async close(ms = scaled(8000)) {
        if (!this.exitInfo) this.send({ cmd: 'close' });
        const info = await withTimeout(this.exited, ms, `client_driver to exit\n${this.describe()}`);
        assert.equal(info.code, 0, `client_driver exit ${JSON.stringify(info)}\n${this.describe()}`);
        const last = this.lines[this.lines.length - 1];
        assert.deepEqual(last, { event: 'exit', loopClose: 0 }, this.describe());
        return info;
    }

    kill() {
        if (!this.exitInfo) this.proc.kill('SIGKILL');
    }
}

/** SIGKILLs every driver and program still running (after() hooks). */
export function killAllDrivers() {
    for (const d of live) {
        try {
            d.proc.kill('SIGKILL');
        } catch {
            /* gone */
        }
    }
}

/**
 * Runs a program to completion; resolves { code, signal, stdout, stderr }. Kills it and
 * rejects after ms. opts.env is added to the environment; opts.onStdout(text) sees output as
 * it arrives.
 */
export function runProgram(file, args, { ms = scaled(10000), extraEnv = {}, onStdout } = {}) {
    const proc = spawn(file, args, { env: env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
    const d = { proc };
    live.add(d);
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (c) => {
        stdout += c;
        onStdout?.(stdout);
    });
    proc.stderr.on('data', (c) => {
        stderr += c;
    });
    const done = new Promise((resolve, reject) => {
        proc.on('error', reject);
        proc.on('close', (code, signal) => {
            live.delete(d);
            resolve({ code, signal, stdout, stderr });
        });
    });
    return withTimeout(done, ms, `${path.basename(file)} ${args.join(' ')} to finish`).catch(
        (err) => {
            proc.kill('SIGKILL');
            err.message += `\nstdout:\n${stdout.slice(-2000)}\nstderr:\n${stderr.slice(-2000)}`;
            throw err;
        });
}
