// Starting and stopping build/volli-signal for the integration tests.
// Owns every server process and temporary data directory a test file creates; stopAll() (run
// from an after() hook) and a process 'exit' handler make sure none outlives the file. It only
// ever signals the PIDs it spawned itself.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scaled, withTimeout } from './util.mjs';

export const BIN = path.resolve(process.env.VOLLI_BIN || 'build/volli-signal');

const live = new Set();
const tempDirs = new Set();

process.on('exit', () => {
    for (const s of live) {
        try {
            s.proc.kill('SIGKILL');
        } catch {
            /* already gone */
        }
    }
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh directory under os.tmpdir(), removed by stopAll() or at process exit. */
export function tempDir(prefix = 'volli-it-') {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    tempDirs.add(d);
    return d;
}

/**
 * The child's environment: ours minus every VOLLI_* variable and LOG_LEVEL (ctest sets
 * VOLLI_BIN and VOLLI_SANITIZED for us, not for the server), plus `extra`.
 */
export function childEnv(extra = {}) {
    const env = {};
    for (const [k, v] of Object.entries(process.env)) {
        if (k.startsWith('VOLLI_') || k === 'LOG_LEVEL') continue;
        env[k] = v;
    }
    return { ...env, ...extra };
}

function spawnBin(args, { env = {}, cwd } = {}) {
    if (!fs.existsSync(BIN)) {
        throw new Error(`server binary not found: ${BIN} (set VOLLI_BIN or build it first)`);
    }
    return spawn(BIN, args, { env: childEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

export class Server {
    constructor(proc, args) {
        this.proc = proc;
        this.pid = proc.pid;
        this.args = args;
        this.port = null;
        this.dataDir = null;
        this.stdout = '';
        this.stderr = '';
        this.lines = [];
        this.logs = [];
        this.exitInfo = null;
        this.waiters = [];
        let partial = '';
        proc.stdout.setEncoding('utf8');
        proc.stdout.on('data', (chunk) => {
            this.stdout += chunk;
        });
        proc.stderr.setEncoding('utf8');
        proc.stderr.on('data', (chunk) => {
            this.stderr += chunk;
            partial += chunk;
            let i;
            while ((i = partial.indexOf('\n')) >= 0) {
                const line = partial.slice(0, i);
                partial = partial.slice(i + 1);
                this.onLine(line);
            }
        });
        this.exited = new Promise((resolve) => {
            proc.on('error', (err) => {
                this.spawnError = err;
            });
            proc.on('close', (code, signal) => {
                if (partial) this.onLine(partial);
                partial = '';
                this.exitInfo = { code, signal };
                live.delete(this);
                for (const w of this.waiters.splice(0)) {
                    w.reject(new Error(`server exited (code ${code}, signal ${signal}) ` +
                                       `before ${w.what}`));
                }
                resolve(this.exitInfo);
            });
        });
    }

    onLine(line) {
        this.lines.push(line);
        // VOLLI_IT_ECHO=1 mirrors server logs to our stderr, for debugging a failing test.
        if (process.env.VOLLI_IT_ECHO === '1') {
            process.stderr.write(`[server ${this.pid}] ${line}\n`);
        }
        let obj = null;
        try {
            obj = JSON.parse(line);
        } catch {
            return;
        }
        if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return;
        this.logs.push(obj);
        this.waiters = this.waiters.filter((w) => {
            if (!w.pred(obj)) return true;
            w.resolve(obj);
            return false;
        });
    }

    /** Resolves with the first (past or future) JSON log line matching pred. */
    /** The HTTP API port, from the "api_listening" log line (start with --api-port 0). */
    async waitApiPort() {
        const line = await this.waitLog((l) => l.msg === 'api_listening', scaled(5000),
                                        'the "api_listening" log line');
        return line.port;
    }

    waitLog(pred, ms, what = 'the expected log line') {
        const found = this.logs.find(pred);
        if (found) return Promise.resolve(found);
        if (this.exitInfo) {
            return Promise.reject(new Error(`server already exited before ${what}`));
        }
        let waiter;
        const p = new Promise((resolve, reject) => {
            waiter = { pred, resolve, reject, what };
            this.waiters.push(waiter);
        });
        return withTimeout(p, ms, what).finally(() => {
            this.waiters = this.waiters.filter((w) => w !== waiter);
        });
    }

    get running() {
        return this.exitInfo === null;
    }

    /** Sends `signal` and waits for the exit; SIGKILLs and throws if it takes longer than ms. */
    async stop(signal = 'SIGTERM', ms = scaled(10000)) {
        if (this.exitInfo) return this.exitInfo;
        this.proc.kill(signal);
        try {
            return await withTimeout(this.exited, ms, `server exit after ${signal}`);
        } catch (err) {
            this.proc.kill('SIGKILL');
            await this.exited;
            throw err;
        }
    }

    async kill9() {
        if (this.exitInfo) return this.exitInfo;
        this.proc.kill('SIGKILL');
        return this.exited;
    }

    tail(n = 4000) {
        return this.stderr.slice(-n);
    }
}

/**
 * Starts the server on 127.0.0.1 with --port 0 and JSON logs and resolves once its
 * "listening" line has been read (server.port is then the kernel-chosen port).
 * With raw: true, `args` is the whole command line (for config/env precedence tests); with
 * wait: false it resolves at once, without a port.
 */
export async function startServer({
    dataDir,
    logLevel = 'info',
    args = [],
    env = {},
    cwd,
    raw = false,
    wait = true,
    timeout = scaled(10000),
} = {}) {
    const dir = raw ? null : dataDir ?? tempDir();
    const argv = raw
        ? args
        : ['--host', '127.0.0.1', '--port', '0', '--data-dir', dir, '--log-format', 'json',
           '--log-level', logLevel, ...args];
    const proc = spawnBin(argv, { env, cwd });
    const server = new Server(proc, argv);
    server.dataDir = dir;
    live.add(server);
    if (!wait) return server;
    try {
        const line = await server.waitLog((l) => l.msg === 'listening', timeout,
                                          'the "listening" log line');
        if (!Number.isInteger(line.port) || line.port <= 0 || line.port > 65535) {
            throw new Error(`"listening" line has no valid integer port: ${JSON.stringify(line)}`);
        }
        server.port = line.port;
    } catch (err) {
        await server.kill9();
        err.message += `\ncommand: ${BIN} ${argv.join(' ')}\nserver stderr:\n${server.tail()}`;
        throw err;
    }
    return server;
}

/**
 * Runs the binary to completion (for flags that make it exit). Resolves with
 * { code, signal, stdout, stderr }; kills it and rejects if it is still running after ms.
 */
export async function runCli(args, { env = {}, cwd, timeout = scaled(5000) } = {}) {
    const proc = spawnBin(args, { env, cwd });
    const server = new Server(proc, args);
    live.add(server);
    try {
        await withTimeout(server.exited, timeout, `volli-signal ${args.join(' ')} to exit`);
    } catch (err) {
        await server.kill9();
        err.message += `\nstderr:\n${server.tail()}`;
        throw err;
    }
    return { ...server.exitInfo, stdout: server.stdout, stderr: server.stderr };
}

/**
 * Stops every server still running with SIGTERM and removes the temporary directories.
 * Throws if one did not exit cleanly with status 0 (that includes sanitizer reports at exit).
 */
export async function stopAll() {
    const problems = [];
    for (const s of [...live]) {
        try {
            const info = await s.stop('SIGTERM');
            if (info.code !== 0) {
                problems.push(`server pid ${s.pid} exited with code ${info.code} signal ` +
                              `${info.signal} on SIGTERM; stderr tail:\n${s.tail(2000)}`);
            }
        } catch (err) {
            problems.push(`server pid ${s.pid}: ${err.message}`);
        }
    }
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
    tempDirs.clear();
    if (problems.length) throw new Error(problems.join('\n'));
}
