// Cluster mode for the integration tests: one Redis and one PostgreSQL per test file, started
// through scripts/redis-service and scripts/pg-service in temporary directories, and any
// number of volli-signal nodes pointing at them (each with its own data directory and node id).
//
// Owns the Redis and PostgreSQL instances it starts: cleanup() (from an after() hook) stops
// them, and a process 'exit' / SIGINT / SIGTERM handler kills them. A detached watchdog per
// instance kills it too if this process dies without running either (SIGKILL, a ctest
// timeout). It only ever signals what it started: the scripts act on the PID file in the
// instance's own directory. Nodes are ordinary lib/server.mjs servers (stopAll() stops them).
//
// Overrides (for developing against a hand-made service): VOLLI_REDIS_SERVICE and
// VOLLI_PG_SERVICE name the scripts.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeAllClients, nextId } from './client.mjs';
import { killAllDrivers } from './clientlib.mjs';
import { fetchMetrics, httpGet, sampleValue } from './http.mjs';
import { startServer, stopAll, tempDir } from './server.mjs';
import { scaled, sleep, SANITIZED, uid } from './util.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const REDIS_SERVICE = process.env.VOLLI_REDIS_SERVICE ||
    path.join(ROOT, 'scripts', 'redis-service');
export const PG_SERVICE = process.env.VOLLI_PG_SERVICE || path.join(ROOT, 'scripts', 'pg-service');

/**
 * A latency or failover target from the contract (1 s, 5 s) as the bound to assert: the
 * measured value must meet it on the normal build; the sanitized build (3x slower) gets 3x.
 */
export function target(ms) {
    return SANITIZED ? ms * 3 : ms;
}

/** ws:// URL of a node's WebSocket endpoint (the form libvolli takes). */
export const wsUrl = (node) => `ws://127.0.0.1:${node.port}/`;

// ---------------------------------------------------------------------------------------------
// Redis and PostgreSQL through the service scripts

const services = new Set(); // every instance not yet stopped: { script, dir }
let handlersInstalled = false;

function killServicesSync() {
    for (const s of services) {
        try {
            execFileSync(s.script, ['kill', s.dir], { stdio: 'ignore', timeout: 15000 });
        } catch {
            /* already gone, or the script failed: the watchdog still covers it */
        }
        fs.rmSync(s.dir, { recursive: true, force: true });
    }
    services.clear();
}

function installHandlers() {
    if (handlersInstalled) return;
    handlersInstalled = true;
    process.on('exit', killServicesSync);
    for (const sig of ['SIGINT', 'SIGTERM']) {
        process.once(sig, () => {
            killServicesSync();
            // exit() runs the other modules' 'exit' handlers (servers, drivers) as well.
            process.exit(128 + os.constants.signals[sig]);
        });
    }
}

/**
 * A detached shell that waits for this process to go away and then kills the instance and
 * removes its directory: the last line of defence against a daemon outliving the test file.
 */
function watchdog(script, dir) {
    const sh = 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; ' +
        '"$2" kill "$3" >/dev/null 2>&1; rm -rf "$3"';
    const w = spawn('/bin/sh', ['-c', sh, 'watchdog', String(process.pid), script, dir],
                    { detached: true, stdio: 'ignore' });
    w.unref();
}

/**
 * Runs `script verb dir args...`; resolves with its stdout (trimmed), rejects with its stderr.
 * The script's output goes to files, not pipes: a daemon it starts may keep an inherited
 * descriptor open for its whole life, and a pipe would then never reach end-of-file.
 */
function runService(script, verb, dir, args = [], ms = scaled(30000)) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'volli-svc-'));
    const outFile = path.join(tmp, 'out');
    const errFile = path.join(tmp, 'err');
    const fds = [fs.openSync(outFile, 'w'), fs.openSync(errFile, 'w')];
    const read = (f) => fs.readFileSync(f, 'utf8');
    return new Promise((resolve, reject) => {
        const proc = spawn(script, [verb, dir, ...args],
                           { stdio: ['ignore', fds[0], fds[1]],
                             env: { ...process.env, CI: 'true' } });
        for (const fd of fds) fs.closeSync(fd);
        const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
        const fail = (what) => reject(new Error(`${path.basename(script)} ${verb} ${dir} ` +
                                                `${what}\n${read(errFile).slice(-3000)}`));
        proc.on('error', (err) => {
            clearTimeout(timer);
            fail(`could not run: ${err.message}`);
        });
        proc.on('exit', (code, signal) => {
            clearTimeout(timer);
            if (code === 0) resolve(read(outFile).trim());
            else fail(signal ? `killed by ${signal} (over ${ms} ms?)` : `exited ${code}`);
        });
    }).finally(() => fs.rmSync(tmp, { recursive: true, force: true }));
}

class Service {
    /** entry: the { script, dir } record in `services`; url: what `start` printed. */
    constructor(entry, url) {
        this.entry = entry;
        this.script = entry.script;
        this.dir = entry.dir;
        this.url = url;
        this.port = Number(new URL(url).port);
        this.running = true;
    }

    async run(verb, args = []) {
        return runService(this.script, verb, this.dir, args);
    }

    /** Clean stop (the data, if any, is kept). */
    async stop() {
        await this.run('stop');
        this.running = false;
    }

    /** SIGKILL. */
    async kill() {
        await this.run('kill');
        this.running = false;
    }

    /** Starts it again on the same port (stopping it first if it runs); returns the URL. */
    async restart() {
        const url = await this.run('restart');
        assert.equal(url, this.url, `${path.basename(this.script)} restart changed the URL`);
        this.running = true;
        return url;
    }

    /** Stops it for good and removes its directory. */
    async destroy() {
        try {
            await this.stop();
        } finally {
            services.delete(this.entry);
            fs.rmSync(this.dir, { recursive: true, force: true });
        }
    }
}

export class Redis extends Service {
    /** redis-cli against it; resolves with the output. */
    cli(...args) {
        return this.run('cli', args.map(String));
    }

    /** Makes Redis hold every client's commands for ms (CLIENT PAUSE ms ALL): a partition. */
    async pause(ms) {
        const out = await this.cli('CLIENT', 'PAUSE', ms, 'ALL');
        assert.equal(out, 'OK', `CLIENT PAUSE answered ${out}`);
    }
}

export class Postgres extends Service {}

async function startService(Kind, script, prefix, args = []) {
    if (!fs.existsSync(script)) {
        throw new Error(`${script} not found (set ${Kind === Redis ? 'VOLLI_REDIS_SERVICE'
                                                                    : 'VOLLI_PG_SERVICE'})`);
    }
    installHandlers();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    const entry = { script, dir };
    services.add(entry);
    watchdog(script, dir);
    let url;
    try {
        url = (await runService(script, 'start', dir, args)).split('\n').pop();
    } catch (err) {
        try {
            execFileSync(script, ['kill', dir], { stdio: 'ignore', timeout: 15000 });
        } catch {
            /* nothing started */
        }
        services.delete(entry);
        fs.rmSync(dir, { recursive: true, force: true });
        throw err;
    }
    return new Kind(entry, url);
}

/** A fresh Redis (optionally with requirepass); redis.url is redis://[:PW@]127.0.0.1:PORT. */
export function startRedis({ password } = {}) {
    return startService(Redis, REDIS_SERVICE, 'volli-redis-',
                        password ? ['--password', password] : []);
}

/** A fresh PostgreSQL; pg.url is postgres://volli:PW@127.0.0.1:PORT/volli. */
export function startPostgres() {
    return startService(Postgres, PG_SERVICE, 'volli-pg-');
}

/** Stops every Redis and PostgreSQL still running (after the nodes, in cleanup()). */
export async function stopServices() {
    const problems = [];
    for (const entry of [...services]) {
        try {
            await runService(entry.script, 'stop', entry.dir);
        } catch (err) {
            problems.push(err.message);
            try {
                execFileSync(entry.script, ['kill', entry.dir], { stdio: 'ignore' });
            } catch {
                /* reported above */
            }
        }
        services.delete(entry);
        fs.rmSync(entry.dir, { recursive: true, force: true });
    }
    if (problems.length) throw new Error(problems.join('\n'));
}

/**
 * For after(): closes the WebSocket clients, kills the client_driver processes, stops every
 * node (SIGTERM, exit 0 expected: lib/server.mjs) and then Redis and PostgreSQL, whatever
 * failed before.
 */
export async function cleanup() {
    closeAllClients();
    killAllDrivers();
    try {
        await stopAll();
    } finally {
        await stopServices();
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes

export class Cluster {
    constructor(redis, pg, { args = [], env = {} } = {}) {
        this.redis = redis;
        this.pg = pg;
        this.args = args;
        this.env = env;
        this.nodes = [];
    }

    /**
     * Redis, PostgreSQL and `nodes` nodes started with `args` and `env`; resolves once every
     * node answers /healthz 200 and counts all of them in volli_cluster_nodes.
     */
    static async start({ nodes = 3, args = [], env = {}, redisPassword } = {}) {
        const [redis, pg] = await Promise.all([startRedis({ password: redisPassword }),
                                               startPostgres()]);
        const c = new Cluster(redis, pg, { args, env });
        for (let i = 0; i < nodes; i++) await c.addNode();
        await c.settle();
        return c;
    }

    /** The nodes still running. */
    get live() {
        return this.nodes.filter((n) => n.running);
    }

    /**
     * Starts one more node. opts: nodeId (default n1, n2, ...), args (after the cluster's),
     * env, redisUrl (default this.redis.url; null: no --redis), database (default pg.url;
     * null: none), healthy (wait for /healthz 200, default true), and any startServer option.
     * Resolves with the lib/server.mjs Server, plus nodeId, apiPort and url.
     */
    async addNode({ nodeId, args = [], env = {}, redisUrl, database, healthy = true,
                    ...rest } = {}) {
        const id = nodeId ?? `n${this.nodes.length + 1}-${uid('').slice(1)}`;
        const redisArg = redisUrl === undefined ? this.redis.url : redisUrl;
        const dbArg = database === undefined ? this.pg.url : database;
        const argv = ['--node-id', id, '--api-port', '0'];
        if (redisArg) argv.push('--redis', redisArg);
        if (dbArg) argv.push('--database', dbArg);
        const node = await startServer({ args: [...argv, ...this.args, ...args],
                                         env: { ...this.env, ...env }, ...rest });
        node.nodeId = id;
        node.url = wsUrl(node);
        node.apiPort = await node.waitApiPort();
        this.nodes.push(node);
        if (healthy) await waitHealth(node, 200);
        return node;
    }

    /** Waits until every live node counts exactly the live nodes in volli_cluster_nodes. */
    async settle(ms = scaled(10000)) {
        const n = this.live.length;
        await Promise.all(this.live.map((node) => waitMetric(
            node, 'volli_cluster_nodes', (v) => v === n, ms, `volli_cluster_nodes == ${n}`)));
    }
}

/**
 * Polls GET /healthz (on the API port with api: true) until it answers `status`; resolves with
 * { status, headers, body, json }. Rejects with the last answer seen after ms.
 */
export async function waitHealth(node, status, { api = false, ms = scaled(10000) } = {}) {
    const port = api ? node.apiPort : node.port;
    const deadline = Date.now() + ms;
    let last = 'no answer';
    for (;;) {
        try {
            const r = await httpGet(port, '/healthz', { ms: scaled(2000) });
            let json;
            try {
                json = JSON.parse(r.body);
            } catch {
                json = undefined;
            }
            if (r.status === status) return { ...r, json };
            last = `${r.status} ${r.body}`;
        } catch (err) {
            last = err.message;
        }
        if (Date.now() >= deadline) {
            throw new Error(`node ${node.nodeId}: /healthz on the ${api ? 'API' : 'main'} port ` +
                            `did not answer ${status} within ${ms} ms; last: ${last}\n` +
                            `node log tail:\n${node.tail(2000)}`);
        }
        await sleep(50);
    }
}

/** The value of one sample of node's /metrics (labels exact), or undefined if absent. */
export async function metric(node, name, labels = {}, { api = false } = {}) {
    const m = await fetchMetrics(api ? node.apiPort : node.port);
    return sampleValue(m, name, labels);
}

/** Polls a metric until pred(value) holds; resolves with the value. */
export async function waitMetric(node, name, pred, ms = scaled(5000), what = name,
                                 labels = {}) {
    const deadline = Date.now() + ms;
    let v;
    for (;;) {
        v = await metric(node, name, labels);
        if (v !== undefined && pred(v)) return v;
        if (Date.now() >= deadline) {
            throw new Error(`node ${node.nodeId}: ${what} not reached within ${ms} ms ` +
                            `(${name} = ${v})`);
        }
        await sleep(50);
    }
}

// ---------------------------------------------------------------------------------------------
// Protocol helpers for cross-node checks

/** One discover of userId from the registered client `c`; resolves with the reply. */
export async function discover(c, userId, ms = scaled(3000)) {
    const id = nextId('dc');
    c.send({ type: 'discover', userId, id });
    return c.recv((m) => m.id === id && (m.type === 'discover' || m.type === 'error'), ms,
                  `discover ${userId}`);
}

/**
 * Polls discover from `observer` until userId's online state is `online`; resolves with the
 * reply and how long it took. Fails after ms with the last reply.
 */
export async function waitPresence(observer, userId, online, ms = scaled(1000)) {
    const t0 = Date.now();
    let last;
    for (;;) {
        last = await discover(observer, userId);
        if (last.type === 'discover' && last.online === online) {
            return { reply: last, ms: Date.now() - t0 };
        }
        if (Date.now() - t0 >= ms) {
            assert.fail(`${userId} not ${online ? 'online' : 'offline'} for ${observer.userId} ` +
                        `within ${ms} ms; last discover: ${JSON.stringify(last)}`);
        }
        await sleep(20);
    }
}

/** Sends a relay of `type` from `from` to `to` (a Client) and waits for it; returns the entry. */
export async function relayOk(from, to, type = 'offer', payload = { sdp: uid('sdp') },
                              ms = scaled(3000)) {
    const member = { offer: 'offer', answer: 'answer', 'ice-candidate': 'candidate' }[type];
    const msg = { type, to: to.userId };
    if (member) msg[member] = payload;
    const tag = uid('tag');
    msg.tag = tag;
    from.send(msg);
    const got = await to.next((m) => m.type === type && m.tag === tag, ms,
                              `${type} ${from.userId} -> ${to.userId}`);
    assert.equal(got.msg.from, from.userId, `relay carries the wrong from: ${got.raw}`);
    return got;
}

/** Round-robin assignment of `n` items to the nodes: [node0, node1, node2, node0, ...]. */
export function spread(nodes, n) {
    return [...Array(n).keys()].map((i) => nodes[i % nodes.length]);
}

/** Re-export so test files import the per-file temp dir helper from one place. */
export { tempDir };
