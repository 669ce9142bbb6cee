// bench/report-cluster.mjs: the cluster sections of RESULTS.md (relay across two nodes, one
// node vs two, failover) and their plot, from the runs of bench/run.mjs's cluster scenarios.
// Called by bench/report.mjs, which passes its run selection (chosen) so that the same runs
// are quoted as everywhere else: the clean ones, else the least disturbed, flagged.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const CLUSTER_VARIANTS = {
    'cluster-relay': { single: 'One node, both ends of every pair on it', cross: 'Two nodes, every sender on node 1 and its receiver on node 2' },
    'cluster-latency': { single: 'One node, both ends of every pair on it', cross: 'Two nodes, every sender on node 1 and its receiver on node 2' },
    'cluster-scale': { one: 'One node (CPU 0); generator on CPU 1', two: 'Two nodes (CPU 0, CPU 1), each pair within one node; generator on CPU 1 with node 2' },
    'cluster-failover': { defaults: 'Defaults: `--cluster-heartbeat 1 --cluster-node-timeout 3`', fast: '`--cluster-heartbeat 0.2 --cluster-node-timeout 1`' },
};

const median = (v) => {
    const s = v.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    if (s.length === 0) return NaN;
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const pct = (v, p) => {
    const s = v.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    return s.length ? s[Math.max(1, Math.ceil((p / 100) * s.length)) - 1] : NaN;
};
const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const fix = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const us = (n) => (!Number.isFinite(n) ? 'n/a' : n >= 1000 ? `${fix(n / 1000, 2)} ms` : `${fix(n, 0)} µs`);
const ms = (n) => (!Number.isFinite(n) ? 'n/a' : n >= 1000 ? `${fix(n / 1000, 2)} s` : `${fix(n, 0)} ms`);

function relaySummary(sel) {
    if (sel.use.length === 0) return null;
    const med = (f) => median(sel.use.map((r) => f(r.json)));
    const j0 = sel.use[0].json;
    return {
        perSec: med((j) => j.per_sec), min: Math.min(...sel.use.map((r) => r.json.per_sec)),
        max: Math.max(...sel.use.map((r) => r.json.per_sec)),
        p50: med((j) => j.latency.p50_us), p90: med((j) => j.latency.p90_us), p99: med((j) => j.latency.p99_us),
        p999: med((j) => j.latency.p999_us), maxLat: med((j) => j.latency.max_us), rate: med((j) => j.per_sec),
        skipped: Math.max(...sel.use.map((r) => r.json.skipped ?? 0)),
        node1: med((j) => j.cluster?.cpu_node1), node2: med((j) => j.cluster?.cpu_node2), redis: med((j) => j.cluster?.cpu_redis),
        gen: med((j) => j.cpu.gen), net: med((j) => j.cpu.net), machine: med((j) => j.cpu.machine), others: med((j) => j.cpu.others),
        perPublish: med((j) => (j.bus?.publishes > 0 ? j.bus.out / j.bus.publishes : NaN)),
        pairs: j0.pairs, bytes: j0.msg_bytes, window: j0.window, target: j0.target_rate, layout: j0.layout,
        n: sel.use.length, disturbed: sel.disturbed,
    };
}

function failoverSummary(sel) {
    if (sel.use.length === 0) return null;
    const pool = (k) => sel.use.flatMap((r) => r.json.samples?.[k] ?? []);
    const d = (v) => ({ p50: pct(v, 50), p90: pct(v, 90), max: v.length ? Math.max(...v) : NaN, n: v.length });
    const j0 = sel.use[0].json;
    return {
        reg: d(pool('reregistered')), restored: d(pool('restored')), offline: d(pool('offline')),
        clients: j0.clients, statics: j0.statics, targets: j0.targets, runs: sel.use.length, disturbed: sel.disturbed,
    };
}

const cpuCell = (x) => [x.node1, x.node2, x.redis].map((v) => (Number.isFinite(v) ? fix(v, 2) : '–')).join(' / ');
const layoutText = (l) => (l ? `nodes on CPU ${l.nodes.join(' and ')}, Redis on CPU ${l.redis}, generator on CPU ${l.gen}` : '');

/**
 * The cluster sections. chosen(records, scen, kind, reps, variant) is report.mjs's run
 * selection. Writes the plot data under dataDir and the plot under plots when there is
 * something to plot. Returns { lines, summary: [[metric, value]], made: [png names] }.
 */
export function clusterReport({ records, reps, chosen, dataDir, plots, plotDir, relPlot }) {
    const C = {};
    for (const [scen, vs] of Object.entries(CLUSTER_VARIANTS)) {
        C[scen] = {};
        for (const v of Object.keys(vs)) {
            const sel = chosen(records, scen, 'volli', reps, v);
            try {
                C[scen][v] = scen === 'cluster-failover' ? failoverSummary(sel) : relaySummary(sel);
            } catch (e) {
                console.error(`report: ${scen}/${v}: ${e.message}`);
                C[scen][v] = null;
            }
        }
    }
    const L = [];
    const p = (s = '') => L.push(s);
    const row = (cells) => p(`| ${cells.join(' | ')} |`);
    const summary = [];
    const made = [];
    const any = Object.values(C).some((x) => Object.values(x).some(Boolean));
    if (!any) return { lines: L, summary, made };

    // Plot: throughput bars.
    const bars = (name, scen, labels) => {
        const vs = Object.keys(labels).filter((v) => C[scen][v]);
        const colours = [0x1f77b4, 0xff7f0e];
        fs.writeFileSync(path.join(dataDir, `${name}.dat`), `# index label value min max colour\n${vs.map((v, i) => {
            const x = C[scen][v];
            return `${i} "${labels[v]}" ${x.perSec} ${x.min} ${x.max} ${colours[i % 2]}`;
        }).join('\n')}\n`);
        return vs.length;
    };
    if (bars('cluster_relay', 'cluster-relay', { single: 'one node', cross: 'across two nodes' }) > 0 &&
        bars('cluster_scale', 'cluster-scale', { one: 'one node', two: 'two nodes' }) > 0) {
        const vars = `plotdir='${plotDir}'; datadir='${dataDir}'; outdir='${plots}'`;
        const r = spawnSync('gnuplot', ['-e', vars, path.join(plotDir, 'cluster.gp')], { encoding: 'utf8' });
        if (r.status !== 0) console.error(`gnuplot cluster.gp: ${r.stderr || r.error}`);
        else made.push('cluster.png');
    }

    // 9. Relay across two nodes.
    p('## 9. Cluster: relay across two nodes');
    p();
    const R = C['cluster-relay'];
    const LT = C['cluster-latency'];
    const r0 = R.single ?? R.cross ?? LT.single ?? LT.cross;
    if (r0) {
        p('Cluster mode (`--redis`, `--database postgres://...`, `--node-id`): one Redis and one PostgreSQL for the ' +
          'sitting, started with scripts/redis-service and scripts/pg-service on loopback; fresh nodes for every run. ' +
          `The relay scenarios of sections 3 and 4 (${int(r0.pairs)} pairs, ${r0.bytes}-byte offers) run twice in the ` +
          'same sitting, alternating run by run: once with both ends of every pair on one node (a node in cluster mode: ' +
          'registrations go through Redis, relays stay inside the node), once with every sender on node 1 and its ' +
          'receiver on node 2, so that every message goes node 1 → Redis PUBLISH on node 2\'s channel → node 2 (the ' +
          'generator connects its receivers to the second node\'s port, `loadgen --port2 P --place cross`). Node 1 ' +
          'batches the records for a node into one PUBLISH per loop turn.');
        p();
        p('**Pinning.** The whole system under test, the node(s) and Redis (all its threads, `taskset -a`), runs on CPU 0; ' +
          'the generator on CPU 1, exactly as for one server in sections 3 and 4. Both rows therefore get the same ' +
          'single core, and the two-node row shows what going through the cluster bus costs per message; it is not ' +
          'a measure of what two nodes on two machines would carry. The CPU columns are each process\'s utime + stime ' +
          'over the measured seconds (cores), from /proc.');
        p();
        row(['Case', 'Delivered msg/s', 'Latency p50 under load', 'p99', 'CPU node 1 / node 2 / Redis', 'Generator', 'Loopback softirq', 'Records per PUBLISH']);
        row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
        for (const [v, label] of Object.entries(CLUSTER_VARIANTS['cluster-relay'])) {
            const x = R[v];
            if (!x) continue;
            row([label, `${int(x.perSec)} (${int(x.min)}–${int(x.max)})`, us(x.p50), us(x.p99), cpuCell(x), fix(x.gen, 2),
                fix(x.net, 2), v === 'cross' ? fix(x.perPublish, 0) : '']);
        }
        if (R.single && R.cross) {
            row(['**Two nodes / one node**', `**${fix(R.cross.perSec / R.single.perSec, 2)}×**`, `${fix(R.cross.p50 / R.single.p50, 2)}×`,
                `${fix(R.cross.p99 / R.single.p99, 2)}×`, '', '', '', '']);
            summary.push(['Cluster relay msg/s, pairs split across two nodes vs one node (same core)',
                `${int(R.cross.perSec)} vs ${int(R.single.perSec)} (${fix(R.cross.perSec / R.single.perSec, 2)}×)`]);
        }
        p();
        const limit = [];
        for (const [v, x] of Object.entries(R)) {
            if (!x) continue;
            const core0 = (x.node1 || 0) + (x.node2 || 0) + (x.redis || 0);
            limit.push(`${v === 'single' ? 'one node' : 'two nodes'}: node(s) and Redis used ${fix(core0, 2)} of CPU 0, ` +
                `the generator ${fix(x.gen, 2)} of CPU 1`);
        }
        p(`**What limits the figure.** ${limit.join('; ')}. ` +
          (Object.values(R).filter(Boolean).every((x) => (x.node1 || 0) + (x.node2 || 0) + (x.redis || 0) > 0.9)
              ? 'CPU 0 is saturated in both cases: the throughput is what one core does with the work of each path. In the ' +
                'cross-node case that core parses every message on node 1, copies it into a batch, has Redis take the ' +
                'PUBLISH and write it to node 2\'s subscription, and node 2 parses the batch and writes every message out; ' +
                'loopback TCP processing of each hop also lands on the sending core (reported as softirq).'
              : 'CPU 0 was not saturated in every case: the generator, or the crowding of two nodes, Redis and the ' +
                'generator on two cores, set the rate.') +
          ' Latency under load is closed-loop (every pair keeps its window full), i.e. mostly queueing; the fixed-rate ' +
          'comparison below is the one to read for latency.');
        p();
        if (LT.single || LT.cross) {
            const l0 = LT.single ?? LT.cross;
            p(`At a fixed ${int(l0.target)} offers per second (section 4\'s open-loop method, the generator busy-polling ` +
              'on CPU 1, the nodes and Redis on CPU 0), one node and across two nodes alternating:');
            p();
            row(['Case', 'Achieved msg/s', 'p50', 'p90', 'p99', 'p99.9', 'max', 'CPU node 1 / node 2 / Redis', 'Records per PUBLISH']);
            row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
            for (const [v, label] of Object.entries(CLUSTER_VARIANTS['cluster-latency'])) {
                const x = LT[v];
                if (!x) continue;
                row([label, int(x.rate) + (x.skipped ? ` (${int(x.skipped)} not sent: over 2 s behind)` : ''), us(x.p50), us(x.p90),
                    us(x.p99), us(x.p999), us(x.maxLat), cpuCell(x), v === 'cross' ? fix(x.perPublish, 1) : '']);
            }
            if (LT.single && LT.cross) {
                row(['**Two nodes / one node**', '', `${fix(LT.cross.p50 / LT.single.p50, 2)}×`, `${fix(LT.cross.p90 / LT.single.p90, 2)}×`,
                    `**${fix(LT.cross.p99 / LT.single.p99, 2)}×**`, `${fix(LT.cross.p999 / LT.single.p999, 2)}×`, '', '', '']);
                summary.push([`Cluster relay latency p99 at ${int(l0.target)} msg/s, across two nodes vs one node`,
                    `${us(LT.cross.p99)} vs ${us(LT.single.p99)}`]);
            }
            p();
            const c0 = (x) => (x ? (x.node1 || 0) + (x.node2 || 0) + (x.redis || 0) : NaN);
            p(`CPU 0 (nodes and Redis) was ${fix(c0(LT.single), 2)} busy with one node and ${fix(c0(LT.cross), 2)} with two. ` +
              'At a fixed rate the messages arrive spread out, so the batches are small (the records-per-PUBLISH column) and ' +
              'each message wakes every process on its path in turn: node 1 reads it and publishes at the end of its loop ' +
              'turn, Redis forwards it, node 2 reads it and writes it out, three processes taking turns on one core. ' +
              'That extra hop, and the wake-ups it needs, is the added latency; the one-node figure is the same path ' +
              'as section 4 with the node in cluster mode.');
            p();
        }
    } else p('No successful run.\n');

    // 10. Scale.
    p('## 10. Cluster: one node to two');
    p();
    const S = C['cluster-scale'];
    if (S.one || S.two) {
        const s0 = S.one ?? S.two;
        p(`The relay throughput scenario (${int(s0.pairs)} pairs, ${s0.bytes}-byte offers, ${s0.window} in flight per pair) ` +
          'against one node, and against two nodes with the pairs spread over them (pair i wholly on node i mod 2: nothing ' +
          'crosses Redis, `loadgen --place spread`), alternating. One node: node on CPU 0, generator and Redis on CPU 1. ' +
          'Two nodes: node 1 on CPU 0; node 2, Redis and the generator on CPU 1, since this machine has no third core ' +
          'to give the generator (letting it run on either core did no better in a trial).');
        p();
        row(['Case', 'Delivered msg/s', 'CPU node 1 / node 2 / Redis', 'Generator', 'Loopback softirq', 'Machine busy (of 2)', 'msg/s per node core*']);
        row(['---', '---:', '---:', '---:', '---:', '---:', '---:']);
        for (const [v, label] of Object.entries(CLUSTER_VARIANTS['cluster-scale'])) {
            const x = S[v];
            if (!x) continue;
            const nodeCores = (x.node1 || 0) + (x.node2 || 0);
            row([label, `${int(x.perSec)} (${int(x.min)}–${int(x.max)})`, cpuCell(x), fix(x.gen, 2), fix(x.net, 2),
                fix(x.machine, 2), int(x.perSec / nodeCores)]);
        }
        if (S.one && S.two) {
            row(['**Two / one**', `**${fix(S.two.perSec / S.one.perSec, 2)}×**`, '', '', '', '', '']);
            summary.push(['Cluster: relay msg/s with two nodes (load spread) vs one, on this 2-core machine',
                `${int(S.two.perSec)} vs ${int(S.one.perSec)} (${fix(S.two.perSec / S.one.perSec, 2)}×)`]);
        }
        p();
        p('*Delivered messages per second divided by the cores the nodes used: the per-node cost, which does not ' +
          'depend on how the machine is shared.');
        p();
        if (S.one && S.two) {
            const full = S.two.machine > 1.85;
            p(`**The limit.** Scaling out needs cores the generator does not use. With one node, the node uses ` +
              `${fix(S.one.node1, 2)} of CPU 0 while the generator has CPU 1 to itself. With two nodes the generator ` +
              `(one thread, ${fix(S.two.gen, 2)} cores) and the loopback TCP processing (${fix(S.two.net, 2)}) come out of the ` +
              `same two cores as the nodes, which got ${fix((S.two.node1 || 0) + (S.two.node2 || 0), 2)} cores between them; ` +
              (full ? `the machine was full (${fix(S.two.machine, 2)} of 2 cores busy). `
                  : `the machine was not even full (${fix(S.two.machine, 2)} of 2 cores busy): the closed loop now also waits ` +
                    'whenever the single generator thread is off a core a node needs, or a node is off the generator\'s. ') +
              'So on this machine the total cannot grow; what the table does show is that a node in a cluster keeps ' +
              'its per-core throughput when its pairs are local (relays between users of one node never touch Redis), ' +
              'so with a core or a machine per node and the load generated elsewhere, throughput grows with the ' +
              'nodes until Redis (only registrations and cross-node relays) becomes the shared limit.');
            p();
        }
        if (made.includes('cluster.png')) p(`![Cluster relay throughput](${relPlot('cluster.png')})`);
        p();
    } else p('No successful run.\n');

    // 11. Failover.
    p('## 11. Cluster: failover');
    p();
    const F = C['cluster-failover'];
    const f0 = F.defaults ?? F.fast;
    if (f0) {
        p(`Two nodes, A (CPU 0) and B (CPU 1); Redis, PostgreSQL and the clients unpinned. ${int(f0.clients)} clients of the ` +
          'C client library (tests/client/driver.c, driven through tests/integration/lib/clientlib.mjs as in the ' +
          'integration tests) are each given both URLs, A first, with the library\'s default reconnect settings ' +
          '(backoff from 200 ms, jittered); each registers on A and subscribes to one of ' +
          `${int(f0.targets)} users on B. ${int(f0.statics)} more users stay on A only (plain WebSocket clients), and a ` +
          'watcher on B subscribes to them. Then A is killed with SIGKILL. Per client: the time from the kill to ' +
          '`registered` on B, and to the `presence` reply for its subscription there (the library re-subscribes after ' +
          're-registering: the subscription is restored). Per user left on A: the time until the watcher on B is told ' +
          'it went offline, which waits for B to declare A dead (`--cluster-node-timeout` after A\'s last heartbeat). ' +
          'Times are taken when the benchmark process reads the event (a few ms of resolution). Figures pool every ' +
          'client of the quoted runs.');
        p();
        row(['Setting', 'Runs × clients', 'Re-registered on B: median / p90 / max', 'Subscription restored: median / p90 / max',
            'Users on A seen offline on B: median / p90 / max']);
        row(['---', '---:', '---:', '---:', '---:']);
        for (const [v, label] of Object.entries(CLUSTER_VARIANTS['cluster-failover'])) {
            const x = F[v];
            if (!x) continue;
            const t = (d) => `${ms(d.p50)} / ${ms(d.p90)} / ${ms(d.max)}`;
            row([label, `${x.runs} × ${x.clients}`, t(x.reg), t(x.restored), `${t(x.offline)} (${x.runs} × ${x.statics} users)`]);
            summary.push([`Cluster failover (${v === 'defaults' ? 'default timings' : 'heartbeat 0.2 s, node timeout 1 s'}): ` +
                'back on the other node with subscription, p90; killed node\'s users offline, p90',
            `${ms(x.restored.p90)}; ${ms(x.offline.p90)}`]);
        }
        p();
        p('Re-registering is the client\'s doing: it sees the connection reset at once and reconnects to the next URL ' +
          'after its first backoff delay (jittered up to 200 ms), so that delay, not the server, sets most of the ' +
          `figure; ${int(f0.clients)} clients arriving together on B also queue behind each other\'s register (an Ed25519 ` +
          'verification, the key lookup in the shared store and the registration ordered through Redis, each). The offline notice is bounded by the node timeout: ' +
          'B learns nothing from A\'s death until A\'s heartbeat key has not been refreshed for that long, then every ' +
          'user of A goes offline at once.');
        p();
    } else p('No successful run.\n');
    return { lines: L, summary, made };
}
