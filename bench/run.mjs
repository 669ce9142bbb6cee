// bench/run.mjs: runs the benchmark scenarios against Volli Signal, the PeerJS server and a
// minimal Node ws relay in one sitting, then writes RESULTS.md and the plots (bench/report.mjs).
// Normally started by bench/run.sh (`make bench`), which builds what it needs first.
//
//   node bench/run.mjs [--quick] [--only idle,relay,...] [--servers volli,ws,peerjs]
//                      [--reps 3] [--no-profile]
//
// --only (or ONLY=pq-handshake,pq-relay in the environment, e.g. `make bench ONLY=...`) runs just
// those scenarios; the other scenarios' runs and profiles are then taken over from the previous
// sitting's results.json in the same output directory, so RESULTS.md keeps every section (its
// header says which sitting each section comes from).
//
// Environment: VOLLI_BIN (server binary), LOADGEN (generator binary), BENCH_BUDGET (seconds for
// the whole sitting; repeats stop when it runs out), BENCH_MAX_OTHERS (CPU cores other processes
// may use during a run before it counts as disturbed, default 0.15), BENCH_MAX_STALL (percent of
// the time a spinning process may be kept off its core, default 5), BENCH_COMMAND (the command
// line shown in RESULTS.md).
//
// The server runs on CPU 0 (taskset -c 0), every generator process on CPU 1 (the cluster
// scenarios pin their nodes, Redis and generator as each variant's layout says). Each run records
// the CPU the rest of the machine used (from /proc/stat deltas minus our processes), and just
// before it a stall probe spins on both cores for a second: on a virtual machine the hypervisor
// can take a core away without the guest's /proc/stat showing it. A run where others used more
// than BENCH_MAX_OTHERS, or the probe lost more than BENCH_MAX_STALL, is repeated, and medians
// of three clean runs are quoted. This file only ever signals the processes it started itself.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { busCounters, runFailover, settle, startNode, startServices, stopNode } from './cluster.mjs';
import { writeReport } from './report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');

// ---------------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
function opt(name, def) {
    const i = argv.indexOf(name);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
}
const QUICK = flag('--quick');
const REPS = Number(opt('--reps', QUICK ? '1' : '3'));
const MAX_ATTEMPTS = QUICK ? 1 : REPS + 3;
const ONLY = opt('--only', process.env.ONLY || '').split(',').filter(Boolean);
const SERVERS = opt('--servers', 'volli,ws,peerjs').split(',').filter(Boolean);
const PROFILE = !flag('--no-profile') && !QUICK;
const BUDGET_S = Number(process.env.BENCH_BUDGET || (QUICK ? 240 : 840));
const MAX_OTHERS = Number(process.env.BENCH_MAX_OTHERS || 0.15);
const MAX_STALL = Number(process.env.BENCH_MAX_STALL || 5);
// What the profiles at the end take out of the budget.
const RUN_BUDGET_S = BUDGET_S - (PROFILE ? 60 : 0);
const OUT = path.resolve(opt('--out', path.join(HERE, 'out', QUICK ? 'quick' : 'full')));
const RESULTS = path.resolve(opt('--results', QUICK ? path.join(OUT, 'RESULTS.md') : path.join(HERE, 'RESULTS.md')));
const PLOTS = path.resolve(opt('--plots', QUICK ? path.join(OUT, 'plots') : path.join(HERE, 'plots')));
const VOLLI_BIN = path.resolve(process.env.VOLLI_BIN || path.join(ROOT, 'build/bench/volli-signal'));
const LOADGEN = path.resolve(process.env.LOADGEN || path.join(HERE, 'out/loadgen'));
const COMMAND = process.env.BENCH_COMMAND || `node bench/run.mjs ${argv.join(' ')}`.trim();

for (const [what, file] of [['server binary (VOLLI_BIN)', VOLLI_BIN], ['generator (LOADGEN)', LOADGEN]]) {
    if (!fs.existsSync(file)) {
        console.error(`bench: ${what} not found: ${file}`);
        process.exit(2);
    }
}

const T0 = Date.now();
// Names this sitting in results.json: the runs of several sittings can be merged (--only).
const SITTING = new Date(T0).toISOString();
const elapsed = () => (Date.now() - T0) / 1000;
const log = (...a) => console.log(`[${elapsed().toFixed(0).padStart(4)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Servers

// Abuse limits are raised for the benchmark: they protect against one address or connection
// sending too much, which is exactly what a load generator on loopback does. The checks still run.
const VOLLI_BENCH_FLAGS = [
    ['--max-connections-per-ip', '10000000'], ['--register-rate', '10000000'],
    ['--rate-messages', '10000000'], ['--rate-bytes', '1024m'], ['--lookup-rate', '100000000'],
    ['--max-subscriptions', '10000000'],
    // No HTTP API listener: its port would be found by listeningPort() as readily as the
    // WebSocket one, and its default 7881 collides between servers on one machine.
    ['--api-port', '-1'],
];
function supportedFlags() {
    const help = spawnSync(VOLLI_BIN, ['--help'], { encoding: 'utf8' }).stdout || '';
    return VOLLI_BENCH_FLAGS.filter(([f]) => help.includes(`${f} `)).flat();
}
const VOLLI_FLAGS = supportedFlags();
const tempDirs = [];

const SERVER_DEFS = {
    volli: {
        label: 'Volli Signal', proto: 'volli',
        cmd: () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'volli-bench-'));
            tempDirs.push(dir);
            return [VOLLI_BIN, '--host', '127.0.0.1', '--port', '0', '--data-dir', dir,
                '--log-format', 'json', ...VOLLI_FLAGS];
        },
    },
    ws: {
        label: 'Node ws relay', proto: 'volli',
        cmd: () => [process.execPath, path.join(HERE, 'peers/ws-relay.mjs'), '--host', '127.0.0.1', '--port', '0'],
    },
    peerjs: {
        label: 'PeerJS server', proto: 'peerjs',
        cmd: () => [process.execPath, path.join(HERE, 'peers/peerjs-server.mjs'), '--host', '127.0.0.1', '--port', '0'],
    },
};

const live = new Set();
process.on('exit', () => {
    for (const p of live) {
        try {
            p.kill('SIGKILL');
        } catch {
            /* gone */
        }
    }
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

// The port a server listens on, from /proc, for when its log line has not arrived (or changed).
function listeningPort(pid) {
    const inodes = new Set();
    try {
        for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
            const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
            if (m) inodes.add(m[1]);
        }
        for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
            const f = line.trim().split(/\s+/);
            if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) return parseInt(f[1].split(':')[1], 16);
        }
    } catch {
        /* not up yet */
    }
    return 0;
}

async function startServer(kind) {
    const def = SERVER_DEFS[kind];
    const cmd = def.cmd();
    const proc = spawn('taskset', ['-c', '0', ...cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(proc);
    let stderr = '';
    let port = 0;
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
        stderr = (stderr + d).slice(-8000);
        const m = /"msg":"listening"[^\n]*"port":(\d+)/.exec(stderr);
        if (m) port = Number(m[1]);
    });
    let exited = null;
    proc.on('exit', (code, sig) => {
        exited = { code, sig };
        live.delete(proc);
    });
    const deadline = Date.now() + 20000;
    while (!port && !exited && Date.now() < deadline) {
        await sleep(50);
        if (!port) port = listeningPort(proc.pid);
    }
    if (!port) {
        proc.kill('SIGKILL');
        throw new Error(`${def.label} did not start: ${exited ? JSON.stringify(exited) : 'timeout'} ${stderr.slice(-400)}`);
    }
    return { kind, proc, pid: proc.pid, port, stderr: () => stderr, exited: () => exited };
}

async function stopServer(s) {
    if (s.exited()) return;
    s.proc.kill('SIGTERM');
    const deadline = Date.now() + 8000;
    while (!s.exited() && Date.now() < deadline) await sleep(50);
    if (!s.exited()) s.proc.kill('SIGKILL');
    while (!s.exited()) await sleep(20);
}

// ---------------------------------------------------------------------------------------------
// Load generator and machine load

function runLoadgen(args, timeoutS, onMeasuring, cpus = '1') {
    return new Promise((resolve) => {
        const proc = spawn('taskset', ['-c', cpus, LOADGEN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        live.add(proc);
        let out = '';
        let err = '';
        proc.stdout.setEncoding('utf8');
        proc.stderr.setEncoding('utf8');
        proc.stdout.on('data', (d) => { out += d; });
        proc.stderr.on('data', (d) => {
            if (onMeasuring && !err.includes('loadgen: measuring') && (err + d).includes('loadgen: measuring')) onMeasuring();
            err = (err + d).slice(-20000);
        });
        const timer = setTimeout(() => proc.kill('SIGKILL'), (timeoutS + 20) * 1000);
        proc.on('exit', (code, sig) => {
            clearTimeout(timer);
            live.delete(proc);
            const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
            let json = null;
            try {
                json = line ? JSON.parse(line) : null;
            } catch {
                json = null;
            }
            resolve({ code, sig, json, stderr: err.split('\n').filter((l) => l && !l.includes('measuring')).slice(-5).join('\n') });
        });
    });
}

function procStat() {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { busy: f[0] + f[1] + f[2] + f[5] + f[6], t: process.hrtime.bigint() };
}
const HZ = 100; // USER_HZ, the unit of /proc/stat on Linux

// CPU cores busy over one second while none of our processes run (this script aside).
async function machineLoad(ms = 1000) {
    const a = procStat();
    await sleep(ms);
    const b = procStat();
    return (b.busy - a.busy) / HZ / (Number(b.t - a.t) / 1e9);
}

// Waits (up to maxS) for the machine to be quiet before a run.
async function waitQuiet(maxS) {
    const start = Date.now();
    let load = await machineLoad(700);
    while (load > MAX_OTHERS && (Date.now() - start) / 1000 < maxS) load = await machineLoad(1000);
    return { load, waited: (Date.now() - start) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const Q = QUICK;
let runSeq = 0;
let pendingBaseS = 0; // estimated seconds of base runs not started yet
const RUNS_DIR = path.join(OUT, 'runs');

const SCENARIOS = [
    {
        id: 'connrate', servers: ['volli', 'ws', 'peerjs'], timeout: 120, profile: 'always', profileSeconds: 2,
        args: (srv) => ['connrate', '--conns', Q ? '1000' : '5000', '--rounds', srv === 'volli' ? '2' : '1',
            '--concurrency', '200'],
        others: (j) => j.others_max,
        ok: (j) => j.rounds?.length > 0 && j.rounds.every((r) => r.failed === 0),
    },
    {
        id: 'relay', servers: ['volli', 'ws', 'peerjs'], timeout: 120, profile: 'always',
        args: () => ['relay', '--pairs', Q ? '200' : '1000', '--window', '16', '--size', '300',
            '--duration', Q ? '2' : '6', '--warmup', '1'],
        others: (j) => j.cpu?.others,
        ok: (j) => j.delivered > 0 && j.order_errors === 0,
        profileSeconds: 5,
    },
    {
        id: 'latency', servers: ['volli', 'ws', 'peerjs'], timeout: 120, profile: 'missed', sched: true,
        handling: 'offer',
        args: (srv, run) => ['latency', '--pairs', Q ? '200' : '1000', '--rate', '20000', '--size', '300',
            '--duration', Q ? '3' : '8', '--warmup', '1', '--busy-poll', '--cdf', path.join(RUNS_DIR, `${run}.cdf`)],
        others: (j) => j.cpu?.others,
        ok: (j) => j.delivered > 0 && j.order_errors === 0,
        profileSeconds: 7,
    },
    {
        id: 'fanout', servers: ['volli'], timeout: 180, profile: 'missed', sched: true,
        args: (srv, run) => ['fanout', '--subs', Q ? '2000' : '10000', '--cycles', Q ? '2' : '5',
            '--concurrency', '200', '--cdf', path.join(RUNS_DIR, `${run}.cdf`)],
        others: (j) => j.cpu?.others,
        ok: (j) => j.cycles?.length > 0 && j.subscribed === j.subs,
        profileSeconds: 3,
    },
    {
        id: 'discover', servers: ['volli'], timeout: 120,
        args: () => ['discover', '--users', '1000', '--clients', '32', '--window', '4',
            '--duration', Q ? '2' : '4', '--warmup', '1'],
        others: (j) => j.cpu?.others,
        ok: (j) => j.answered > 0 && j.errors === 0 && j.mismatches === 0,
    },
    {
        id: 'discover-offline', servers: ['volli'], timeout: 120,
        args: () => ['discover', '--users', '100', '--offline', '1000', '--clients', '32', '--window', '4',
            '--duration', Q ? '2' : '4', '--warmup', '1'],
        others: (j) => j.cpu?.others,
        ok: (j) => j.answered > 0 && j.errors === 0 && j.mismatches === 0,
    },
    {
        // Memory does not depend on CPU contention: disturbed idle runs are recorded, not repeated.
        id: 'idle', servers: ['volli', 'ws', 'peerjs'], timeout: 300, repeatDisturbed: false,
        args: () => ['idle', '--steps', Q ? '1000,2000' : '5000,10000,max', '--procs', Q ? '2' : '4',
            '--settle', Q ? '1' : '1.5', '--concurrency', '200'],
        others: (j) => j.cpu?.others,
        ok: (j) => j.steps?.length > 1 && j.steps.every((s) => s.target === 0 || s.held > 0),
    },
    // Post-quantum sessions (docs/protocol.md). Variants of one scenario run interleaved, each
    // against a fresh server, so that plain and encrypted (or the two algorithms) see the same
    // machine. The generator's share of the work is described in bench/lg.h.
    {
        id: 'pq-handshake', servers: ['volli'], timeout: 120, profile: 'always', profileSeconds: 3,
        variants: [
            { id: 'mlkem', label: 'ML-KEM-768, one per connection', args: ['--pq', 'ML-KEM-768'] },
            { id: 'hybrid', label: 'X25519MLKEM768, one per connection', args: ['--pq', 'X25519MLKEM768'] },
            { id: 'rekey', label: 'ML-KEM-768, 16 per connection (15 rekeys)', args: ['--pq', 'ML-KEM-768', '--per-conn', '16'] },
        ],
        args: () => ['pq-handshake', '--concurrency', '64', '--conns', '200000', '--verify-every', '16',
            '--duration', Q ? '2' : '5', '--warmup', '1'],
        others: (j) => j.cpu?.others,
        ok: (j) => j.handshakes > 0 && j.failed === 0 && j.unexpected === 0 && j.key_checks > 0 &&
            j.pq.bad_response === 0 && j.pq.refused === 0 && j.pq.open_failed === 0,
    },
    {
        id: 'pq-relay', servers: ['volli'], timeout: 120, profile: 'always', profileVariant: 'enc', profileSeconds: 5,
        variants: [
            { id: 'plain', label: 'plaintext', args: [] },
            { id: 'enc', label: 'PQ sessions (ML-KEM-768)', args: ['--pq', 'ML-KEM-768'] },
        ],
        args: () => ['relay', '--pairs', Q ? '200' : '1000', '--window', '16', '--size', '300',
            '--duration', Q ? '2' : '6', '--warmup', '1'],
        others: (j) => j.cpu?.others,
        ok: (j) => j.delivered > 0 && j.order_errors === 0 && j.lost === 0 && !(j.pq?.open_failed > 0),
    },
    {
        id: 'pq-latency', servers: ['volli'], timeout: 120,
        variants: [
            { id: 'plain', label: 'plaintext', args: [] },
            { id: 'enc', label: 'PQ sessions (ML-KEM-768)', args: ['--pq', 'ML-KEM-768'] },
        ],
        args: (srv, run) => ['latency', '--pairs', Q ? '200' : '1000', '--rate', '20000', '--size', '300',
            '--duration', Q ? '3' : '8', '--warmup', '1', '--busy-poll', '--cdf', path.join(RUNS_DIR, `${run}.cdf`)],
        others: (j) => j.cpu?.others,
        ok: (j) => j.delivered > 0 && j.order_errors === 0 && !(j.pq?.open_failed > 0),
    },
    // Cluster mode (bench/cluster.mjs): one Redis and one PostgreSQL for the sitting, fresh nodes
    // every run. A variant's layout pins each node, Redis and the generator (taskset lists).
    // Cross-node vs one node: the whole system under test (nodes and Redis) on CPU 0 and the
    // generator on CPU 1, as for one server, so both rows get the same core; each pair's
    // sender is on node 1 and its receiver on node 2, so every message crosses Redis.
    {
        id: 'cluster-relay', servers: ['volli'], timeout: 120, cluster: true,
        variants: [
            { id: 'single', label: 'one node (pairs on it)', layout: { nodes: ['0'], redis: '0', gen: '1' } },
            { id: 'cross', label: 'two nodes, every pair split across them',
                layout: { nodes: ['0', '0'], redis: '0', gen: '1', place: 'cross' } },
        ],
        args: () => ['relay', '--pairs', Q ? '200' : '1000', '--window', '16', '--size', '300',
            '--duration', Q ? '2' : '6', '--warmup', '1'],
        others: (j) => j.cpu?.others,
        ok: (j) => j.delivered > 0 && j.order_errors === 0 && j.lost === 0 && j.other_msgs === 0,
    },
    {
        id: 'cluster-latency', servers: ['volli'], timeout: 120, cluster: true,
        variants: [
            { id: 'single', label: 'one node (pairs on it)', layout: { nodes: ['0'], redis: '0', gen: '1' } },
            { id: 'cross', label: 'two nodes, every pair split across them',
                layout: { nodes: ['0', '0'], redis: '0', gen: '1', place: 'cross' } },
        ],
        args: (srv, run) => ['latency', '--pairs', Q ? '200' : '1000', '--rate', '20000', '--size', '300',
            '--duration', Q ? '3' : '8', '--warmup', '1', '--busy-poll', '--cdf', path.join(RUNS_DIR, `${run}.cdf`)],
        others: (j) => j.cpu?.others,
        ok: (j) => j.delivered > 0 && j.order_errors === 0 && j.lost === 0 && j.other_msgs === 0,
    },
    // One node vs two on this 2-core machine: pairs stay within a node (nothing crosses Redis)
    // and the load is spread over both nodes, one core each; the generator then has no core of
    // its own and shares CPU 1 with node 2 (better than letting it wander between the cores).
    {
        id: 'cluster-scale', servers: ['volli'], timeout: 120, cluster: true,
        variants: [
            { id: 'one', label: 'one node (CPU 0), generator on CPU 1', layout: { nodes: ['0'], redis: '1', gen: '1' } },
            { id: 'two', label: 'two nodes (CPU 0, CPU 1), pairs within a node, generator on CPU 1',
                layout: { nodes: ['0', '1'], redis: '1', gen: '1', place: 'spread' } },
        ],
        args: () => ['relay', '--pairs', Q ? '200' : '1000', '--window', '16', '--size', '300',
            '--duration', Q ? '2' : '6', '--warmup', '1'],
        others: (j) => j.cpu?.others,
        ok: (j) => j.delivered > 0 && j.order_errors === 0 && j.lost === 0 && j.other_msgs === 0,
    },
    // Failover: node A on CPU 0, node B on CPU 1, Redis, PostgreSQL and the client processes
    // unpinned. Not CPU-bound: a disturbed run is recorded, not repeated.
    {
        id: 'cluster-failover', servers: ['volli'], timeout: 60, cluster: true, repeatDisturbed: false,
        variants: [
            { id: 'defaults', label: 'defaults (--cluster-heartbeat 1 --cluster-node-timeout 3)', nodeArgs: [] },
            { id: 'fast', label: '--cluster-heartbeat 0.2 --cluster-node-timeout 1',
                nodeArgs: ['--cluster-heartbeat', '0.2', '--cluster-node-timeout', '1'] },
        ],
        failover: { clients: Q ? 20 : 100, statics: Q ? 10 : 50, targets: 10, waitS: 20 },
        others: () => 0,
        ok: (j) => j.missing_reregistered === 0 && j.missing_restored === 0 && j.missing_offline === 0 &&
            j.wrong_presence === 0 && j.survivor_alive,
    },
].filter((s) => ONLY.length === 0 || ONLY.includes(s.id));

// What one scenario runs per repetition: every server it applies to, times its variants.
const casesOf = (scen) => scen.servers.filter((k) => SERVERS.includes(k))
    .flatMap((kind) => (scen.variants ?? [null]).map((variant) => ({ kind, variant })));
const sameCase = (r, scen, c) => r.scenario === scen.id && r.kind === c.kind && (r.variant ?? null) === (c.variant?.id ?? null);

// Spins one generator process on each core for `seconds` (nothing else of ours runs): the
// percentage of the time each was kept off its core, and the longest gap.
async function stallProbe(seconds) {
    const probes = await Promise.all([0, 1].map((cpu) => new Promise((resolve) => {
        const proc = spawn('taskset', ['-c', String(cpu), LOADGEN, 'stallprobe', '--duration', String(seconds)],
            { stdio: ['ignore', 'pipe', 'ignore'] });
        live.add(proc);
        let out = '';
        proc.stdout.setEncoding('utf8');
        proc.stdout.on('data', (d) => { out += d; });
        proc.on('exit', () => {
            live.delete(proc);
            try {
                resolve(JSON.parse(out.trim()));
            } catch {
                resolve(null);
            }
        });
    })));
    const ok = probes.filter(Boolean);
    return {
        stalled: ok.length ? Math.max(...ok.map((p) => p.stalled_pct)) : 0,
        maxGapUs: ok.length ? Math.max(...ok.map((p) => p.max_gap_us)) : 0,
        over1ms: ok.reduce((t, p) => t + p.gaps_over_1ms, 0) / Math.max(1, ok.length) / seconds,
    };
}

// Redis and PostgreSQL for the cluster scenarios, started at the first of them.
let clusterSvc = null;

// One run of a cluster scenario: fresh nodes laid out as the variant says, then the generator
// (or the failover driver); records like attempt()'s.
async function attemptCluster(scen, kind, extra = {}) {
    const variant = extra.variant;
    const run = `r${++runSeq}`;
    const quiet = await waitQuiet(Q ? 3 : Math.min(30, Math.max(0, RUN_BUDGET_S - elapsed() - pendingBaseS) / 10));
    const probe = await stallProbe(1);
    const rec = { run, kind, variant: variant.id, scenario: scen.id, quiet, probe, stall: probe.stalled, others: 0 };
    const nodes = [];
    let res = null;
    try {
        if (!clusterSvc) {
            log('starting Redis and PostgreSQL (scripts/redis-service, scripts/pg-service) for the cluster scenarios');
            clusterSvc = await startServices();
        }
        const svc = clusterSvc;
        if (scen.failover) {
            svc.pin('0,1');
            rec.json = await runFailover({ bin: VOLLI_BIN, svc, flags: VOLLI_FLAGS, nodeArgs: variant.nodeArgs,
                tag: run, ...scen.failover });
        } else {
            const lay = variant.layout;
            svc.pin(lay.redis);
            for (let i = 0; i < lay.nodes.length; i++) {
                nodes.push(await startNode({ bin: VOLLI_BIN, svc, nodeId: `${run}n${i + 1}`, cpus: lay.nodes[i], flags: VOLLI_FLAGS }));
            }
            await settle(nodes);
            const bus0 = await busCounters(nodes[0]);
            const args = [...scen.args(kind, run), '--port', String(nodes[0].port), '--server-pid', String(nodes[0].pid),
                '--redis-pid', String(svc.redisPid), '--tag', run, '--timeout', String(scen.timeout)];
            if (nodes[1]) args.push('--port2', String(nodes[1].port), '--server-pid2', String(nodes[1].pid), '--place', lay.place);
            rec.args = args;
            res = await runLoadgen(args, scen.timeout, null, lay.gen);
            const bus1 = await busCounters(nodes[0]);
            rec.code = res.code;
            rec.json = res.json;
            if (rec.json) {
                rec.json.bus = { out: bus1.out - bus0.out, publishes: bus1.publishes - bus0.publishes };
                rec.json.layout = lay;
            }
            const crashed = nodes.find((n) => n.exited());
            if (crashed) rec.error = `node exited during the run: ${JSON.stringify(crashed.exited())} ${crashed.stderr().slice(-300)}`;
        }
    } catch (e) {
        rec.error = e.message;
    } finally {
        for (const n of nodes) await stopNode(n);
    }
    const j = rec.json;
    rec.others = j ? scen.others(j) ?? 0 : 0;
    rec.ok = !!j && !rec.error && scen.ok(j);
    if (!rec.error && !j) rec.error = `generator: exit ${res?.code ?? res?.sig}: ${res?.stderr}`;
    else if (!rec.error && !rec.ok) rec.error = `incomplete run: ${res?.stderr || JSON.stringify(j).slice(0, 300)}`;
    if (res) rec.stderr = res.stderr;
    rec.disturbed = rec.others > MAX_OTHERS || rec.stall > MAX_STALL;
    log(`${scen.id.padEnd(16)} ${variant.id.padEnd(8)} ${run.padEnd(5)} others ${rec.others.toFixed(2)} cores, ` +
        `stalls ${rec.stall.toFixed(1)}%${rec.disturbed ? ' (disturbed)' : ''}${rec.error ? ` ERROR ${rec.error.slice(0, 300)}` : ''}` +
        ` ${summary(scen.id, j)}`);
    return rec;
}

async function attempt(scen, kind, extra = {}) {
    if (scen.cluster) return attemptCluster(scen, kind, extra);
    const variant = extra.variant ?? null;
    const run = `r${++runSeq}`;
    // Waiting for quiet spends only the slack the budget has beyond the base runs still to come.
    const quiet = await waitQuiet(Q ? 3 : Math.min(30, Math.max(0, RUN_BUDGET_S - elapsed() - pendingBaseS) / 10));
    const probe = await stallProbe(1);
    let server;
    try {
        server = await startServer(kind);
    } catch (e) {
        log(`${scen.id}/${kind}: ${e.message}`);
        return { run, kind, variant: variant?.id, scenario: scen.id, error: e.message, others: 0, stall: probe.stalled, probe, quiet };
    }
    const args = [...scen.args(kind, run), ...(variant?.args ?? []), '--port', String(server.port), '--server-pid', String(server.pid),
        '--proto', SERVER_DEFS[kind].proto, '--tag', run, '--timeout', String(scen.timeout)];
    const res = await runLoadgen(args, scen.timeout, extra.onMeasuring ? () => extra.onMeasuring(server) : null);
    if (extra.onDone) await extra.onDone(server);
    const handling = scen.handling && kind === 'volli' ? await handlingTimes(server.port, scen.handling) : null;
    const crashed = server.exited();
    await stopServer(server);
    const j = res.json;
    const rec = {
        run, kind, variant: variant?.id, scenario: scen.id, quiet, probe, args, code: res.code, json: j,
        others: j ? scen.others(j) ?? 0 : 0, stall: probe.stalled, handling,
        ok: !!j && !crashed && scen.ok(j),
        stderr: res.stderr,
    };
    if (crashed) rec.error = `server exited during the run: ${JSON.stringify(crashed)} ${server.stderr().slice(-300)}`;
    else if (!j) rec.error = `generator: exit ${res.code ?? res.sig}: ${res.stderr}`;
    else if (!rec.ok) rec.error = `incomplete run: ${res.stderr || JSON.stringify(j).slice(0, 300)}`;
    rec.disturbed = rec.others > MAX_OTHERS || rec.stall > MAX_STALL;
    log(`${scen.id.padEnd(16)} ${(variant ? `${kind}/${variant.id}` : kind).padEnd(6)} ${run.padEnd(5)} others ${rec.others.toFixed(2)} cores, ` +
        `stalls ${rec.stall.toFixed(1)}%` +
        `${rec.disturbed ? ' (disturbed)' : ''}${rec.error ? ` ERROR ${rec.error.slice(0, 200)}` : ''}` +
        ` ${summary(scen.id, j)}`);
    return rec;
}

function summary(id, j) {
    if (!j) return '';
    switch (id) {
    case 'idle': return j.steps.map((s) => `${s.held}:${(s.rss / 1048576).toFixed(1)}MiB`).join(' ');
    case 'connrate': return j.rounds.map((r) => `${r.per_sec.toFixed(0)}/s`).join(' ');
    case 'relay': return `${j.per_sec.toFixed(0)} msg/s`;
    case 'latency': return `p50 ${j.latency.p50_us}us p99 ${j.latency.p99_us}us p99.9 ${j.latency.p999_us}us`;
    case 'fanout': return j.cycles.map((c) => `${c.online_ms.toFixed(1)}ms`).join(' ');
    case 'pq-handshake': return `${j.per_sec.toFixed(0)} handshakes/s, server ${j.server_cpu_us_per_hs.toFixed(0)} us each ` +
        `(${j.cpu.server.toFixed(2)} cores), generator ${j.cpu.gen.toFixed(2)} cores`;
    case 'pq-relay': return `${j.per_sec.toFixed(0)} msg/s p99 ${j.latency.p99_us}us, server ${j.cpu.server.toFixed(2)} cores`;
    case 'pq-latency': return `p50 ${j.latency.p50_us}us p99 ${j.latency.p99_us}us p99.9 ${j.latency.p999_us}us`;
    case 'cluster-relay': case 'cluster-scale': return `${j.per_sec.toFixed(0)} msg/s, cores: ${clusterCpu(j)}`;
    case 'cluster-latency': return `${j.per_sec.toFixed(0)} msg/s p50 ${j.latency.p50_us}us p99 ${j.latency.p99_us}us, cores: ${clusterCpu(j)}`;
    case 'cluster-failover': return `re-registered p50/p90/max ${j.reregistered.p50?.toFixed(0)}/${j.reregistered.p90?.toFixed(0)}/` +
        `${j.reregistered.max?.toFixed(0)} ms, restored ${j.restored.p50?.toFixed(0)}/${j.restored.p90?.toFixed(0)}/${j.restored.max?.toFixed(0)} ms, ` +
        `offline seen ${j.offline.p50?.toFixed(0)}/${j.offline.p90?.toFixed(0)}/${j.offline.max?.toFixed(0)} ms`;
    default: return j.per_sec !== undefined ? `${j.per_sec.toFixed(0)}/s p99 ${j.latency?.p99_us}us` : '';
    }
}

const clusterCpu = (j) => `node1 ${j.cluster?.cpu_node1?.toFixed(2)}` +
    `${j.cluster?.cpu_node2 !== undefined ? ` node2 ${j.cluster.cpu_node2.toFixed(2)}` : ''} redis ${j.cluster?.cpu_redis?.toFixed(2)} ` +
    `gen ${j.cpu.gen.toFixed(2)} net ${j.cpu.net.toFixed(2)}`;

// Volli's own view of the run: its request-duration histogram for one message type, from
// /metrics (time from a frame's arrival in the server to its handling being done, queueing in the
// kernel and the scheduler excluded). Returns cumulative counts by upper bound in seconds.
async function handlingTimes(port, type) {
    try {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const re = new RegExp(`^volli_request_duration_seconds_bucket\\{type="${type}",le="([^"]+)"\\} (\\d+)`, 'gm');
        const buckets = [...text.matchAll(re)].map((m) => ({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), n: Number(m[2]) }));
        return buckets.length ? { type, buckets } : null;
    } catch {
        return null;
    }
}

// The server's scheduling delays (wake-up to running) over `seconds`, from `perf sched`.
async function schedDelays(pid, seconds) {
    const data = path.join(OUT, `sched-${pid}.data`);
    const rec = spawn('perf', ['sched', 'record', '-o', data, '--', 'sleep', String(seconds)], { stdio: 'ignore' });
    live.add(rec);
    await new Promise((r) => rec.on('exit', r));
    live.delete(rec);
    const out = spawnSync('perf', ['sched', 'latency', '-i', data], { encoding: 'utf8', maxBuffer: 1 << 24 }).stdout || '';
    fs.rmSync(data, { force: true });
    const line = out.split('\n').find((l) => l.trim().startsWith('volli-signal'));
    const m = line && /\|\s*([\d.]+) ms\s*\|\s*(\d+)\s*\|\s*avg:\s*([\d.]+) ms\s*\|\s*max:\s*([\d.]+) ms/.exec(line);
    return m ? { runtimeMs: Number(m[1]), switches: Number(m[2]), avgMs: Number(m[3]), maxMs: Number(m[4]) } : null;
}

// Profiles the server during the measured phase of one more run (perf, CPU clock sampling).
async function profile(scen, kind) {
    const data = path.join(OUT, `perf-${scen.id}-${kind}.data`);
    let perf = null;
    let sched = null;
    const variant = scen.variants ? scen.variants.find((v) => v.id === scen.profileVariant) ?? scen.variants[0] : null;
    const rec = await attempt(scen, kind, {
        variant,
        onMeasuring: (server) => {
            perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '999', '-p', String(server.pid), '-o', data,
                '--', 'sleep', String(scen.profileSeconds)], { stdio: 'ignore' });
            live.add(perf);
            if (scen.sched) sched = schedDelays(server.pid, scen.profileSeconds);
        },
        onDone: async () => {
            if (!perf) return;
            await new Promise((r) => (perf.exitCode !== null ? r() : perf.on('exit', r)));
            live.delete(perf);
            if (sched) sched = await sched;
        },
    });
    if (!fs.existsSync(data)) return { scenario: scen.id, kind, error: 'perf recorded nothing', rec };
    const report = (sort, limit) => (spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', sort,
        '--percent-limit', limit, '-q'], { encoding: 'utf8', maxBuffer: 1 << 24 }).stdout || '')
        .split('\n').map((l) => l.trim()).filter(Boolean);
    const top = report('dso,symbol', '0.8').slice(0, 20).map((l) => {
        const m = /^([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.+?)(?:\s+-\s+-)?\s*$/.exec(l);
        return m ? { pct: Number(m[1]), dso: m[2], kernel: m[3] === 'k', symbol: m[4] } : { raw: l };
    });
    const dsos = report('dso', '0.5').map((l) => {
        const m = /^([\d.]+)%\s+(.+?)\s*$/.exec(l);
        return m ? { pct: Number(m[1]), dso: m[2] } : { raw: l };
    });
    fs.rmSync(data, { force: true });
    return { scenario: scen.id, kind, variant: variant?.id, variantLabel: variant?.label, top, dsos, sched, rec };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
    fs.mkdirSync(RUNS_DIR, { recursive: true });
    const before = await machineLoad(2000);
    log(`machine load before the sitting: ${before.toFixed(2)} of ${os.cpus().length} cores busy; ` +
        `budget ${BUDGET_S}s, runs by others over ${MAX_OTHERS} cores are repeated`);
    const records = [];
    const earlier = earlierSitting();
    pendingBaseS = SCENARIOS.reduce((t, sc) => t + estimate(sc) * REPS, 0);
    for (const scen of SCENARIOS) {
        const cases = casesOf(scen);
        for (let rep = 0; rep < REPS; rep++) {
            for (const c of cases) {
                pendingBaseS -= estimate(scen) / cases.length;
                records.push(await attempt(scen, c.kind, { variant: c.variant }));
            }
        }
        // Repeats: disturbed or failed runs, until REPS clean ones or the budget is spent. Later
        // scenarios get their first REPS runs before any time goes to repeats here.
        const remaining = SCENARIOS.slice(SCENARIOS.indexOf(scen) + 1);
        const reserve = remaining.reduce((t, s) => t + estimate(s) * REPS, 0);
        for (const c of cases) {
            const mine = () => records.filter((r) => sameCase(r, scen, c));
            const good = (r) => r.ok && (!r.disturbed || scen.repeatDisturbed === false);
            while (mine().filter(good).length < REPS && mine().length < MAX_ATTEMPTS &&
                   elapsed() + estimate(scen) / cases.length + reserve < RUN_BUDGET_S) {
                records.push(await attempt(scen, c.kind, { variant: c.variant }));
            }
        }
    }
    if (clusterSvc) {
        await clusterSvc.stop();
        clusterSvc = null;
    }
    for (const r of records) r.sitting = SITTING;
    if (earlier) {
        records.unshift(...earlier.records);
        log(`kept ${earlier.records.length} run(s) of ${earlier.scenarios.join(', ')} from the sitting(s) of ` +
            `${[...new Set(earlier.records.map((r) => r.sitting))].join(', ')}`);
    }
    const profiles = earlier ? [...earlier.profiles] : [];
    if (PROFILE && spawnSync('perf', ['--version']).status === 0) {
        // Where the server's time goes at its limits (connection rate, relay throughput), and in
        // any scenario whose target was missed.
        const { missed } = writeReport({ records, profiles, meta: meta(before), dryRun: true });
        for (const scen of SCENARIOS) {
            if (!scen.profile || !(scen.profile === 'always' || missed.includes(scen.id))) continue;
            if (!scen.servers.includes('volli') || !SERVERS.includes('volli')) continue;
            log(`profiling volli during ${scen.id}${missed.includes(scen.id) ? ' (target missed)' : ''}`);
            const pr = await profile(scen, 'volli');
            pr.sitting = SITTING;
            profiles.push(pr);
        }
    }
    const m = { ...meta(before), sittings: sittingsOf(records, earlier, meta(before)) };
    fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify({ meta: m, records, profiles }, null, 1));
    const { missed } = writeReport({ records, profiles, meta: m, out: OUT, results: RESULTS, plots: PLOTS });
    log(`wrote ${path.relative(ROOT, RESULTS)} and ${path.relative(ROOT, PLOTS)}/*.png` +
        `${missed.length ? `; targets missed: ${missed.join(', ')}` : '; all targets met'}`);
    const failed = records.filter((r) => r.error && r.sitting === SITTING).length;
    if (failed) log(`${failed} run(s) had errors; see RESULTS.md`);
}

// Seconds one run of a scenario takes on a quiet machine, for all its cases (for the repeat
// budget).
function estimate(scen) {
    const full = { idle: 75, connrate: 14, relay: 12, latency: 13, fanout: 10, discover: 8, 'discover-offline': 9,
        'pq-handshake': 9, 'pq-relay': 13, 'pq-latency': 13, 'cluster-relay': 14, 'cluster-latency': 15,
        'cluster-scale': 14, 'cluster-failover': 25 };
    const n = casesOf(scen).length;
    return (Q ? 0.4 : 1) * (full[scen.id] ?? 15) * (scen.id === 'idle' ? 1 : n);
}

// With --only: the runs and profiles of the scenarios not run now, from the previous sitting
// written to the same directory (themselves possibly merged from earlier ones). Run names go on
// from the highest one kept, so the per-run files (latency CDFs) of both sittings coexist.
function earlierSitting() {
    if (ONLY.length === 0) return null;
    const file = path.join(OUT, 'results.json');
    let prev;
    try {
        prev = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
        log(`no earlier results in ${path.relative(ROOT, file)}: RESULTS.md will hold only ${ONLY.join(', ')}`);
        return null;
    }
    const keep = (x) => !ONLY.includes(x.scenario);
    const id = prev.meta.sitting ?? prev.meta.date;
    const records = prev.records.filter(keep).map((r) => ({ ...r, sitting: r.sitting ?? id }));
    const profiles = (prev.profiles ?? []).filter(keep).map((p) => ({ ...p, sitting: p.sitting ?? id }));
    for (const r of records) runSeq = Math.max(runSeq, Number(/^r(\d+)$/.exec(r.run)?.[1] ?? 0));
    const sittings = prev.meta.sittings ?? [{ id, date: prev.meta.date, command: prev.meta.command, commit: prev.meta.commit,
        dirty: prev.meta.dirty, elapsed: prev.meta.elapsed, loadBefore: prev.meta.loadBefore, reps: prev.meta.reps }];
    return { records, profiles, sittings, scenarios: [...new Set(records.map((r) => r.scenario))] };
}

// Which sitting each scenario's quoted runs come from, for the header of RESULTS.md.
function sittingsOf(records, earlier, now) {
    const all = [...(earlier?.sittings ?? []), { id: SITTING, date: now.date, command: now.command, commit: now.commit,
        dirty: now.dirty, elapsed: now.elapsed, loadBefore: now.loadBefore, reps: now.reps }];
    return all.map((s) => ({ ...s, scenarios: [...new Set(records.filter((r) => r.sitting === s.id).map((r) => r.scenario))] }))
        .filter((s) => s.scenarios.length > 0);
}

function meta(loadBefore) {
    const sh = (cmd, args) => (spawnSync(cmd, args, { encoding: 'utf8' }).stdout || '').trim();
    const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.+)/) || [])[1] || 'unknown';
    let peerVersion = 'unknown';
    let wsVersion = 'unknown';
    try {
        peerVersion = JSON.parse(fs.readFileSync(path.join(HERE, 'peers/node_modules/peer/package.json'))).version;
        wsVersion = JSON.parse(fs.readFileSync(path.join(HERE, 'peers/node_modules/ws/package.json'))).version;
    } catch {
        /* reported as unknown */
    }
    const read = (f) => { try { return fs.readFileSync(f, 'utf8').trim(); } catch { return ''; } };
    return {
        date: new Date().toISOString(), sitting: SITTING, command: COMMAND, quick: QUICK, reps: REPS, maxOthers: MAX_OTHERS,
        maxStall: MAX_STALL,
        budget: BUDGET_S, elapsed: elapsed(), loadBefore,
        cpu, cores: os.cpus().length, kernel: os.release(), memGiB: os.totalmem() / 2 ** 30,
        virtual: /^flags\s*:.*\bhypervisor\b/m.test(fs.readFileSync('/proc/cpuinfo', 'utf8')),
        commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
        dirty: sh('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']) !== '',
        volliVersion: sh(VOLLI_BIN, ['--version']), volliFlags: VOLLI_FLAGS,
        node: process.version, peerVersion, wsVersion,
        portRange: read('/proc/sys/net/ipv4/ip_local_port_range').split(/\s+/).map(Number),
        nrOpen: Number(read('/proc/sys/fs/nr_open')), fileMax: Number(read('/proc/sys/fs/file-max')),
        somaxconn: Number(read('/proc/sys/net/core/somaxconn')),
        tcpMem: read('/proc/sys/net/ipv4/tcp_mem').split(/\s+/).map(Number),
        fdLimit: sh('bash', ['-c', 'echo "$(ulimit -Sn) $(ulimit -Hn)"']),
    };
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
