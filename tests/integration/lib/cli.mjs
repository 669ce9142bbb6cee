// Running the `volli` command-line client (build/volli) from the integration tests.
// Owns every CLI process a test file starts: each is recorded, its stdout and stderr are split
// into lines as they arrive (so a test can wait for a line of a long-running `watch`), every
// wait is bounded, and stopAllCli() / a process 'exit' handler kill only these PIDs.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { scaled, withTimeout } from './util.mjs';

export const CLI = path.resolve(process.env.VOLLI_BUILD_DIR || 'build', 'volli');

const live = new Set();

process.on('exit', () => {
    for (const p of live) {
        try {
            p.proc.kill('SIGKILL');
        } catch {
            /* already gone */
        }
    }
});

/**
 * The child's environment: ours without any VOLLI_* variable (so that the test runner's
 * VOLLI_BIN or a developer's VOLLI_SERVER / VOLLI_USER / VOLLI_KEY cannot leak into a test),
 * plus `extra`.
 */
export function cliEnv(extra = {}) {
    const env = {};
    for (const [k, v] of Object.entries(process.env)) {
        if (!k.startsWith('VOLLI_')) env[k] = v;
    }
    return { ...env, ...extra };
}

/** Splits a stream into lines, calling onLine for each complete one (and the rest at end). */
function lineReader(stream, onLine) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
        partial += chunk;
        let i;
        while ((i = partial.indexOf('\n')) >= 0) {
            onLine(partial.slice(0, i));
            partial = partial.slice(i + 1);
        }
    });
    stream.on('end', () => {
        if (partial) onLine(partial);
        partial = '';
    });
}

export class CliProcess {
    constructor(args, { env = {}, cwd } = {}) {
        if (!fs.existsSync(CLI)) {
            throw new Error(`CLI binary not found: ${CLI} (set VOLLI_BUILD_DIR or build it)`);
        }
        this.args = args;
        this.proc = spawn(CLI, args, { env: cliEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
        this.pid = this.proc.pid;
        this.out = [];
        this.err = [];
        this.waiters = [];
        this.exitInfo = null;
        live.add(this);
        lineReader(this.proc.stdout, (l) => this.onLine('out', l));
        lineReader(this.proc.stderr, (l) => this.onLine('err', l));
        this.exited = new Promise((resolve) => {
            this.proc.on('error', (err) => {
                this.spawnError = err;
            });
            this.proc.on('close', (code, signal) => {
                this.exitInfo = { code, signal };
                live.delete(this);
                for (const w of this.waiters.splice(0)) {
                    w.reject(new Error(`volli exited (code ${code}, signal ${signal}) before ` +
                                       `${w.what}\n${this.describe()}`));
                }
                resolve(this.exitInfo);
            });
        });
    }

    onLine(stream, line) {
        const lines = stream === 'out' ? this.out : this.err;
        const entry = { line, index: lines.length };
        lines.push(line);
        this.waiters = this.waiters.filter((w) => {
            if (w.stream !== stream || entry.index < w.from || !w.pred(line)) return true;
            w.resolve(line);
            return false;
        });
    }

    describe() {
        return `volli ${this.args.join(' ')}\nstdout:\n${this.out.join('\n')}\n` +
            `stderr:\n${this.err.join('\n')}`;
    }

    /**
     * Resolves with the first line on `stream` ('out' or 'err'), from line index `from` on,
     * that matches pred (a RegExp or a function).
     */
    waitLine(pred, { stream = 'out', from = 0, ms = scaled(5000), what } = {}) {
        const test = pred instanceof RegExp ? (l) => pred.test(l) : pred;
        const lines = stream === 'out' ? this.out : this.err;
        const label = what ?? `a ${stream === 'out' ? 'stdout' : 'stderr'} line ${pred}`;
        for (let i = from; i < lines.length; i++) {
            if (test(lines[i])) return Promise.resolve(lines[i]);
        }
        if (this.exitInfo) {
            return Promise.reject(new Error(`volli already exited before ${label}\n` +
                                            this.describe()));
        }
        let waiter;
        const p = new Promise((resolve, reject) => {
            waiter = { stream, from, pred: test, resolve, reject, what: label };
            this.waiters.push(waiter);
        });
        return withTimeout(p, ms, `${label}\n${this.describe()}`).finally(() => {
            this.waiters = this.waiters.filter((w) => w !== waiter);
        });
    }

    /** stdout lines parsed as JSON; throws naming the line if one is not a JSON object. */
    jsonLines() {
        return this.out.map((l) => {
            const v = JSON.parse(l);
            if (v === null || typeof v !== 'object' || Array.isArray(v)) {
                throw new Error(`stdout line is not a JSON object: ${l}`);
            }
            return v;
        });
    }

    /** Waits for the exit; SIGKILLs and throws if it takes longer than ms. */
    async wait(ms = scaled(5000)) {
        try {
            return await withTimeout(this.exited, ms, `volli to exit\n${this.describe()}`);
        } catch (err) {
            this.proc.kill('SIGKILL');
            await this.exited;
            throw err;
        }
    }

    /** Sends signal and waits for the exit (bounded, see wait()). */
    async stop(signal = 'SIGTERM', ms = scaled(5000)) {
        if (this.exitInfo) return this.exitInfo;
        this.proc.kill(signal);
        return this.wait(ms);
    }
}

/** Starts `volli args...` in the background; see CliProcess. */
export function startVolli(args, opts = {}) {
    return new CliProcess(args, opts);
}

/**
 * Runs `volli args...` to completion. Resolves with { code, signal, stdout, stderr, out, err,
 * ms } (out/err: arrays of lines; ms: wall time); kills it and rejects after `timeout`.
 */
export async function runVolli(args, { env = {}, cwd, timeout = scaled(5000) } = {}) {
    const started = Date.now();
    const p = new CliProcess(args, { env, cwd });
    const info = await p.wait(timeout);
    return {
        ...info,
        stdout: p.out.join('\n'),
        stderr: p.err.join('\n'),
        out: p.out,
        err: p.err,
        ms: Date.now() - started,
    };
}

/** Kills (SIGKILL) every CLI process still running that this file started. */
export async function stopAllCli() {
    const running = [...live];
    for (const p of running) p.proc.kill('SIGKILL');
    await Promise.all(running.map((p) => p.exited));
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound once, then released). */
export async function closedPort() {
    const s = net.createServer();
    await withTimeout(new Promise((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', resolve);
    }), 3000, 'listen on a free port');
    const { port } = s.address();
    await new Promise((resolve) => s.close(resolve));
    return port;
}
