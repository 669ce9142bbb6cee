// bench/cluster.mjs: cluster mode for bench/run.mjs. One Redis and one PostgreSQL for the
// sitting (scripts/redis-service and scripts/pg-service, each in a temporary directory of its
// own), fresh volli-signal nodes for every run (each pinned with taskset, its own data
// directory and node id), and the failover scenario: client_driver processes (the C client
// library, as in tests/integration/82-client-failover) given two node URLs, one node killed
// with SIGKILL, and the time until each client is registered again on the other node with its
// subscription restored, and until a subscriber there sees the killed node's users go offline.
//
// It only ever signals what it started: nodes and drivers by the PIDs it spawned, Redis and
// PostgreSQL through the scripts, which act on the PID file in the instance's own directory.
// A process 'exit' handler kills whatever is left (run.mjs turns SIGINT/SIGTERM into exit()).

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const REDIS_SERVICE = path.join(ROOT, 'scripts', 'redis-service');
const PG_SERVICE = path.join(ROOT, 'scripts', 'pg-service');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const liveNodes = new Set();
const services = new Set(); // { script, dir }
const tempDirs = new Set();

process.on('exit', () => {
    for (const n of liveNodes) {
        try {
            n.proc.kill('SIGKILL');
        } catch {
            /* gone */
        }
    }
    for (const s of services) {
        try {
            execFileSync(s.script, ['kill', s.dir], { stdio: 'ignore', timeout: 15000 });
        } catch {
            /* already gone */
        }
        fs.rmSync(s.dir, { recursive: true, force: true });
    }
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

// Runs `script verb dir`; resolves with its last stdout line. Output goes to files, not pipes:
// the daemon it starts may keep an inherited descriptor open for its whole life.
function runService(script, verb, dir, ms = 60000) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'volli-bench-svc-'));
    const fds = [fs.openSync(path.join(tmp, 'out'), 'w'), fs.openSync(path.join(tmp, 'err'), 'w')];
    const read = (f) => fs.readFileSync(path.join(tmp, f), 'utf8');
    return new Promise((resolve, reject) => {
        const proc = spawn(script, [verb, dir], { stdio: ['ignore', fds[0], fds[1]], env: { ...process.env, CI: 'true' } });
        for (const fd of fds) fs.closeSync(fd);
        const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
        proc.on('error', (e) => {
            clearTimeout(timer);
            reject(new Error(`${path.basename(script)} ${verb}: ${e.message}`));
        });
        proc.on('exit', (code, sig) => {
            clearTimeout(timer);
            if (code === 0) resolve(read('out').trim().split('\n').pop());
            else reject(new Error(`${path.basename(script)} ${verb} ${dir}: exit ${code ?? sig}: ${read('err').slice(-600)}`));
        });
    }).finally(() => fs.rmSync(tmp, { recursive: true, force: true }));
}

async function startService(script, prefix) {
    // Directly under the temporary directory: as root, pg-service hands its directory to the
    // postgres user, who must be able to reach it.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    const entry = { script, dir };
    services.add(entry);
    // When this process dies without its exit handler (SIGKILL), a detached shell still kills
    // the instance and removes its directory.
    spawn('/bin/sh', ['-c', 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" kill "$3" >/dev/null 2>&1; rm -rf "$3"',
        'watchdog', String(process.pid), script, dir], { detached: true, stdio: 'ignore' }).unref();
    try {
        return { entry, url: await runService(script, 'start', dir) };
    } catch (e) {
        try {
            execFileSync(script, ['kill', dir], { stdio: 'ignore', timeout: 15000 });
        } catch {
            /* nothing started */
        }
        services.delete(entry);
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
    }
}

/** Redis and PostgreSQL for the sitting: { redisUrl, pgUrl, redisPid, pin(cpus), stop() }. */
export async function startServices() {
    const [redis, pg] = await Promise.all([startService(REDIS_SERVICE, 'volli-bench-redis-'),
        startService(PG_SERVICE, 'volli-bench-pg-')]);
    const redisPid = Number(fs.readFileSync(path.join(redis.entry.dir, 'redis.pid'), 'utf8').trim());
    return {
        redisUrl: redis.url, pgUrl: pg.url, redisPid,
        // Every thread of Redis (its I/O and background threads too) onto these CPUs.
        pin(cpus) {
            execFileSync('taskset', ['-a', '-p', '-c', cpus, String(redisPid)], { stdio: 'ignore' });
        },
        async stop() {
            for (const s of [redis.entry, pg.entry]) {
                try {
                    await runService(s.script, 'stop', s.dir);
                } catch {
                    try {
                        execFileSync(s.script, ['kill', s.dir], { stdio: 'ignore', timeout: 15000 });
                    } catch {
                        /* gone */
                    }
                }
                services.delete(s);
                fs.rmSync(s.dir, { recursive: true, force: true });
            }
        },
    };
}

// ---------------------------------------------------------------------------------------------
// Nodes

async function metricsText(port) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), 2000);
    try {
        return await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: ctl.signal })).text();
    } finally {
        clearTimeout(t);
    }
}

/** One sample of a node's /metrics (no labels), NaN if absent or unreachable. */
export async function metric(node, name) {
    try {
        const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(await metricsText(node.port));
        return m ? Number(m[1]) : NaN;
    } catch {
        return NaN;
    }
}

/**
 * Starts one node pinned to `cpus` (taskset list) with the common flags and `args`. Resolves
 * with { proc, pid, port, nodeId, url, stderr(), exited() } once it listens.
 */
export async function startNode({ bin, svc, nodeId, cpus, flags = [], args = [] }) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'volli-bench-node-'));
    tempDirs.add(dir);
    const cmd = [bin, '--host', '127.0.0.1', '--port', '0', '--data-dir', dir, '--log-format', 'json', ...flags,
        '--redis', svc.redisUrl, '--database', svc.pgUrl, '--node-id', nodeId, ...args];
    const proc = spawn('taskset', ['-c', cpus, ...cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
    const node = { proc, pid: proc.pid, port: 0, nodeId, dir, exitInfo: null, log: '' };
    liveNodes.add(node);
    // If this process is SIGKILLed, the node goes too (only while its command line still names
    // its own data directory: a recycled PID is left alone).
    spawn('/bin/sh', ['-c', 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; ' +
        'tr "\\0" " " <"/proc/$2/cmdline" 2>/dev/null | grep -qF -- "$3" && kill -KILL "$2"',
    'watchdog', String(process.pid), String(proc.pid), dir], { detached: true, stdio: 'ignore' }).unref();
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
        node.log = (node.log + d).slice(-8000);
        const m = !node.port && /"msg":"listening"[^\n]*"port":(\d+)/.exec(node.log);
        if (m) node.port = Number(m[1]);
    });
    proc.on('exit', (code, sig) => {
        node.exitInfo = { code, sig };
        liveNodes.delete(node);
    });
    node.exited = () => node.exitInfo;
    node.stderr = () => node.log;
    const deadline = Date.now() + 20000;
    while (!node.port && !node.exitInfo && Date.now() < deadline) await sleep(20);
    if (!node.port) {
        proc.kill('SIGKILL');
        throw new Error(`node ${nodeId} did not start: ${JSON.stringify(node.exitInfo) ?? 'timeout'} ${node.log.slice(-400)}`);
    }
    node.url = `ws://127.0.0.1:${node.port}/`;
    return node;
}

/** Waits until every node counts `n` live nodes (they heard each other's heartbeats). */
export async function settle(nodes, n = nodes.length, ms = 15000) {
    const deadline = Date.now() + ms;
    for (;;) {
        const seen = await Promise.all(nodes.map((x) => metric(x, 'volli_cluster_nodes')));
        if (seen.every((v) => v === n)) return;
        if (Date.now() > deadline) throw new Error(`cluster did not settle: volli_cluster_nodes ${seen.join(', ')}, want ${n}`);
        await sleep(50);
    }
}

/** SIGTERM (the node drains: --drain-timeout), SIGKILL after 8 s. */
export async function stopNode(node) {
    if (node.exitInfo) return;
    node.proc.kill('SIGTERM');
    const deadline = Date.now() + 8000;
    while (!node.exitInfo && Date.now() < deadline) await sleep(20);
    if (!node.exitInfo) node.proc.kill('SIGKILL');
    while (!node.exitInfo) await sleep(20);
    fs.rmSync(node.dir, { recursive: true, force: true });
    tempDirs.delete(node.dir);
}

/** The bus counters of a node: records out, records in, PUBLISH commands. */
export async function busCounters(node) {
    const [out, inn, pubs] = await Promise.all(['volli_bus_messages_out_total', 'volli_bus_messages_in_total',
        'volli_bus_publishes_total'].map((m) => metric(node, m)));
    return { out, in: inn, publishes: pubs };
}

// ---------------------------------------------------------------------------------------------
// Failover

const pct = (v, p) => {
    if (v.length === 0) return NaN;
    const s = [...v].sort((a, b) => a - b);
    return s[Math.max(1, Math.ceil((p / 100) * s.length)) - 1];
};
const round1 = (x) => Math.round(x * 10) / 10;
export const dist = (v) => ({ n: v.length, p50: pct(v, 50), p90: pct(v, 90), max: v.length ? Math.max(...v) : NaN });

/**
 * The failover scenario, one run. Node A (CPU 0) and node B (CPU 1) in a fresh cluster with
 * nodeArgs; on B `targets` users and a watcher; on A `statics` users that never move (plain
 * WebSocket clients, URL A only) which the watcher subscribes to; then `clients`
 * client_driver processes with URLs [A, B], each registered on A and subscribed to one target.
 * A is killed with SIGKILL; per client, the time from the kill to `registered` on B and to the
 * presence reply that shows its subscription restored there; per static user, the time until
 * the watcher on B is told it is offline. Timestamps are taken when this process reads the
 * line or frame (the event loop serves everything in turn: a few ms of resolution).
 */
export async function runFailover({ bin, svc, flags, nodeArgs, clients, statics, targets, tag, waitS }) {
    process.env.VOLLI_BUILD_DIR = path.dirname(bin);
    const { Driver, clientBin } = await import('../tests/integration/lib/clientlib.mjs');
    const { connectAs, nextId } = await import('../tests/integration/lib/client.mjs');
    clientBin('client_driver'); // throws early, with the path, when it was not built
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'volli-bench-keys-'));
    tempDirs.add(keyDir);
    const nodes = [];
    const drivers = [];
    const wsClients = [];
    try {
        nodes.push(await startNode({ bin, svc, nodeId: `${tag}a`, cpus: '0', flags, args: nodeArgs }));
        nodes.push(await startNode({ bin, svc, nodeId: `${tag}b`, cpus: '1', flags, args: nodeArgs }));
        const [A, B] = nodes;
        await settle(nodes);
        const tIds = Array.from({ length: targets }, (_, j) => `${tag}t${j}`);
        const sIds = Array.from({ length: statics }, (_, j) => `${tag}s${j}`);
        for (const id of tIds) wsClients.push(await connectAs(B.port, id));
        for (const id of sIds) wsClients.push(await connectAs(A.port, id));
        const watcher = await connectAs(B.port, `${tag}w`);
        wsClients.push(watcher);
        const offlineAt = new Map();
        let t0 = 0;
        watcher.ws.on('message', (data) => {
            let m;
            try {
                m = JSON.parse(data.toString('utf8'));
            } catch {
                return;
            }
            if (t0 && m.type === 'presence' && m.online === false && !offlineAt.has(m.userId)) offlineAt.set(m.userId, performance.now());
        });
        for (let k = 0; k < sIds.length; k += 100) {
            const id = nextId('sub');
            const ids = sIds.slice(k, k + 100);
            watcher.send({ type: 'subscribe', id, userIds: ids });
            for (const u of ids) {
                const p = await watcher.recv((m) => m.type === 'presence' && m.userId === u, 5000, `presence of ${u}`);
                if (!p.online) throw new Error(`${u} on A is not online for the watcher on B`);
            }
        }
        // The drivers, started a batch at a time (each makes a key and connects).
        const times = [];
        for (let i = 0; i < clients; i++) {
            const user = `${tag}c${i}`;
            const d = new Driver([A.url, B.url], { user, key: path.join(keyDir, `${user}.pem`) });
            d.target = tIds[i % tIds.length];
            const onLine = d.onLine.bind(d);
            d.onLine = (line) => {
                const before = d.lines.length;
                onLine(line);
                if (d.lines.length > before) d.lines[d.lines.length - 1].t = performance.now();
            };
            drivers.push(d);
            if (drivers.length % 25 === 0 || i === clients - 1) {
                await Promise.all(drivers.slice(-25).map(async (x) => {
                    const reg = await x.registered(15000);
                    if (reg.url !== A.url) throw new Error(`${x.user} registered on ${reg.url}, not on A`);
                    const r = await x.request({ cmd: 'subscribe', ids: [x.target] }, 10000);
                    if (r.status !== 0) throw new Error(`subscribe: ${JSON.stringify(r)}`);
                    const p = await x.event('presence', (m) => m.userId === x.target, 10000);
                    if (!p.online) throw new Error(`${x.target} on B is not online for ${x.user}`);
                }));
            }
        }
        for (const d of drivers) d.take(() => true);
        await sleep(300);
        t0 = performance.now();
        A.proc.kill('SIGKILL');
        const deadline = t0 + waitS * 1000;
        await Promise.all(drivers.map(async (d) => {
            const rec = { reg: NaN, restored: NaN };
            times.push(rec);
            try {
                const reg = await d.next((m) => m.event === 'registered' && m.url === B.url, Math.max(1, deadline - performance.now()), 'registered on B');
                rec.reg = reg.t - t0;
                // Every line before the kill was taken: this is B's answer to the restored
                // subscription (A is gone, and B sends presence only once we registered there).
                const p = await d.next((m) => m.event === 'presence' && m.userId === d.target,
                    Math.max(1, deadline - performance.now()), 'presence after failover');
                rec.restored = p.t - t0;
                rec.online = p.online;
            } catch {
                /* counted as missing */
            }
        }));
        while (offlineAt.size < sIds.length && performance.now() < deadline) await sleep(20);
        const ok = (v) => Number.isFinite(v);
        const reg = times.map((r) => r.reg).filter(ok);
        const restored = times.filter((r) => r.online === true).map((r) => r.restored).filter(ok);
        const offline = sIds.map((u) => offlineAt.get(u)).filter(ok).map((t) => t - t0);
        // Still correct on B afterwards: a restored client is registered there.
        const bNodes = await metric(B, 'volli_cluster_nodes');
        return {
            scenario: 'cluster-failover', clients, statics, targets, node_args: nodeArgs,
            reregistered: dist(reg), restored: dist(restored), offline: dist(offline),
            missing_reregistered: clients - reg.length, missing_restored: clients - restored.length,
            missing_offline: statics - offline.length, wrong_presence: times.filter((r) => r.online === false).length,
            b_cluster_nodes_after: bNodes, survivor_alive: !B.exitInfo,
            // Per client / per static user, in ms, for pooling over runs (bench/report-cluster.mjs).
            samples: { reregistered: reg.map(round1), restored: restored.map(round1), offline: offline.map(round1) },
        };
    } finally {
        for (const d of drivers) d.kill();
        for (const c of wsClients) c.terminate();
        await Promise.all(drivers.map((d) => d.exited));
        for (const n of nodes) await stopNode(n);
        fs.rmSync(keyDir, { recursive: true, force: true });
        tempDirs.delete(keyDir);
    }
}
