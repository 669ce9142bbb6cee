// bench/report.mjs: turns the runs of bench/run.mjs into RESULTS.md, the plot data and the PNG
// plots (gnuplot, bench/plot/*.gp). Medians of the clean runs are quoted; every run, clean or
// not, is listed at the end with the CPU the rest of the machine used during it.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLUSTER_VARIANTS, clusterReport } from './report-cluster.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const KINDS = ['volli', 'ws', 'peerjs'];
const LABEL = { volli: 'Volli Signal', ws: 'Node ws relay', peerjs: 'PeerJS server' };
// The colours of bench/plot/common.gp, as integers for gnuplot's `lc rgb variable`.
const COLOUR = { volli: 0x1f77b4, ws: 0x2ca02c, peerjs: 0xd62728 };

// ---------------------------------------------------------------------------------------------
// Numbers

const median = (v) => {
    const s = v.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    if (s.length === 0) return NaN;
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const fix = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const bytes = (n) => (!Number.isFinite(n) ? 'n/a' : n >= 1024 * 1024 * 1024 ? `${fix(n / 2 ** 30, 2)} GiB`
    : n >= 1024 * 1024 ? `${fix(n / 2 ** 20, 1)} MiB` : n >= 1024 ? `${fix(n / 1024, 2)} KiB` : `${int(n)} B`);
const us = (n) => (!Number.isFinite(n) ? 'n/a' : n >= 1000 ? `${fix(n / 1000, 2)} ms` : `${fix(n, 0)} µs`);
const ratio = (theirs, ours) => (Number.isFinite(theirs) && Number.isFinite(ours) && ours !== 0
    ? `${theirs / ours >= 10 ? fix(theirs / ours, 1) : fix(theirs / ours, 2)}×` : 'n/a');

// The runs quoted for one scenario and server: the clean ones, or (when too few were clean
// within the budget) the least disturbed, flagged.
let limits = { others: 0.15, stall: 5 };
const score = (r) => Math.max(r.others / limits.others, (r.stall ?? 0) / limits.stall);
// variant: for scenarios run in several variants (bench/run.mjs), which one.
function chosen(records, scen, kind, reps, variant) {
    const mine = records.filter((r) => r.scenario === scen && r.kind === kind && (r.variant ?? null) === (variant ?? null));
    const ok = mine.filter((r) => r.ok);
    const clean = ok.filter((r) => !r.disturbed);
    const dirty = ok.filter((r) => r.disturbed).sort((a, b) => score(a) - score(b));
    const use = [...clean, ...dirty].slice(0, Math.max(reps, 1));
    return { use, disturbed: use.filter((r) => r.disturbed).length, all: mine };
}
// The variants of the post-quantum scenarios, in the order they are reported.
const PQ_VARIANTS = {
    'pq-handshake': { mlkem: 'ML-KEM-768, one handshake per connection', hybrid: 'X25519MLKEM768, one handshake per connection',
        rekey: 'ML-KEM-768, 16 handshakes per connection (15 rekeys inside the session)' },
    'pq-relay': { plain: 'Plaintext', enc: 'PQ sessions (ML-KEM-768), every frame `enc`' },
    'pq-latency': { plain: 'Plaintext', enc: 'PQ sessions (ML-KEM-768), every frame `enc`' },
};
const med = (sel, f) => median(sel.use.map((r) => f(r.json)));

// ---------------------------------------------------------------------------------------------
// Scenario summaries

function idleSummary(sel) {
    if (sel.use.length === 0) return null;
    const nsteps = Math.min(...sel.use.map((r) => r.json.steps.length));
    const steps = [];
    for (let k = 1; k < nsteps; k++) {
        const at = (r) => r.json.steps[k];
        steps.push({
            target: at(sel.use[0]).target,
            held: median(sel.use.map((r) => at(r).held)),
            rss: median(sel.use.map((r) => at(r).rss)),
            perConn: median(sel.use.map((r) => (at(r).rss - r.json.steps[0].rss) / at(r).held)),
            kernelPerConn: median(sel.use.map((r) => (at(r).slab - r.json.steps[0].slab) / (2 * at(r).held))),
            seconds: median(sel.use.map((r) => at(r).seconds)),
        });
    }
    const base = median(sel.use.map((r) => r.json.steps[0].rss));
    const first = steps[0];
    const last = steps[steps.length - 1];
    const slope = steps.length > 1 ? (last.rss - first.rss) / (last.held - first.held) : (last.rss - base) / last.held;
    const at = (n) => last.rss + slope * (n - last.held);
    return { base, steps, last, slope, at, fdLimit: sel.use[0].json.fd_limit, procs: sel.use[0].json.procs };
}

function connSummary(sel) {
    if (sel.use.length === 0) return null;
    const round = (i) => ({
        perSec: median(sel.use.map((r) => r.json.rounds[i]?.per_sec)),
        p50: median(sel.use.map((r) => r.json.rounds[i]?.setup.p50_us)),
        p99: median(sel.use.map((r) => r.json.rounds[i]?.setup.p99_us)),
        cpu: median(sel.use.map((r) => r.json.rounds[i]?.cpu.server)),
        gen: median(sel.use.map((r) => r.json.rounds[i]?.cpu.gen)),
    });
    return { first: round(0), second: sel.use[0].json.rounds.length > 1 ? round(1) : null, n: sel.use[0].json.conns };
}

function relaySummary(sel) {
    if (sel.use.length === 0) return null;
    return {
        perSec: med(sel, (j) => j.per_sec), min: Math.min(...sel.use.map((r) => r.json.per_sec)),
        max: Math.max(...sel.use.map((r) => r.json.per_sec)),
        p50: med(sel, (j) => j.latency.p50_us), p99: med(sel, (j) => j.latency.p99_us),
        server: med(sel, (j) => j.cpu.server), gen: med(sel, (j) => j.cpu.gen), net: med(sel, (j) => j.cpu.net),
        bytes: sel.use[0].json.msg_bytes, pairs: sel.use[0].json.pairs, window: sel.use[0].json.window,
        lost: Math.max(...sel.use.map((r) => r.json.lost)),
    };
}

function latencySummary(sel) {
    if (sel.use.length === 0) return null;
    const byP99 = [...sel.use].sort((a, b) => a.json.latency.p99_us - b.json.latency.p99_us);
    return {
        p50: med(sel, (j) => j.latency.p50_us), p90: med(sel, (j) => j.latency.p90_us),
        p99: med(sel, (j) => j.latency.p99_us), p999: med(sel, (j) => j.latency.p999_us),
        sockP50: med(sel, (j) => j.latency_socket?.p50_us), sockP99: med(sel, (j) => j.latency_socket?.p99_us),
        handling: sel.use.map((r) => r.handling).filter(Boolean),
        genStalled: med(sel, (j) => j.gen_stalled_pct), genGaps: med(sel, (j) => j.gen_gaps_over_1ms / j.seconds),
        max: med(sel, (j) => j.latency.max_us), rate: med(sel, (j) => j.per_sec),
        target: sel.use[0].json.target_rate, n: med(sel, (j) => j.latency.n),
        skipped: Math.max(...sel.use.map((r) => r.json.skipped)), lost: Math.max(...sel.use.map((r) => r.json.lost)),
        server: med(sel, (j) => j.cpu.server), medianRun: byP99[Math.floor((byP99.length - 1) / 2)].run,
    };
}

function fanoutSummary(sel) {
    if (sel.use.length === 0) return null;
    const later = (j) => median(j.cycles.slice(1).map((c) => c.online_socket_ms));
    const byLater = [...sel.use].sort((a, b) => later(a.json) - later(b.json));
    return {
        subs: sel.use[0].json.subs, cycles: sel.use[0].json.cycles.length,
        first: med(sel, (j) => j.cycles[0].online_socket_ms), firstReg: med(sel, (j) => j.cycles[0].registered_ms),
        later: med(sel, (j) => (j.cycles.length > 1 ? later(j) : j.cycles[0].online_socket_ms)),
        laterRead: med(sel, (j) => median(j.cycles.slice(j.cycles.length > 1 ? 1 : 0).map((c) => c.online_ms))),
        offlineRead: med(sel, (j) => median(j.cycles.map((c) => c.offline_ms))),
        laterReg: med(sel, (j) => median(j.cycles.slice(1).map((c) => c.registered_ms))),
        offline: med(sel, (j) => median(j.cycles.map((c) => c.offline_socket_ms))),
        worst: Math.max(...sel.use.flatMap((r) => r.json.cycles.map((c) => c.online_socket_ms))),
        p50: med(sel, (j) => j.last_cycle_socket.p50_us),
        server: med(sel, (j) => j.cpu.server), medianRun: byLater[Math.floor((byLater.length - 1) / 2)].run,
    };
}

function discoverSummary(sel) {
    if (sel.use.length === 0) return null;
    return {
        perSec: med(sel, (j) => j.per_sec), p50: med(sel, (j) => j.latency.p50_us),
        p99: med(sel, (j) => j.latency.p99_us), p999: med(sel, (j) => j.latency.p999_us),
        server: med(sel, (j) => j.cpu.server), gen: med(sel, (j) => j.cpu.gen),
        clients: sel.use[0].json.clients, window: sel.use[0].json.window,
    };
}

function pqHandshakeSummary(sel) {
    if (sel.use.length === 0) return null;
    const j0 = sel.use[0].json;
    return {
        perSec: med(sel, (j) => j.per_sec), min: Math.min(...sel.use.map((r) => r.json.per_sec)),
        max: Math.max(...sel.use.map((r) => r.json.per_sec)),
        cpuUs: med(sel, (j) => j.server_cpu_us_per_hs), perCore: med(sel, (j) => j.per_core),
        server: med(sel, (j) => j.cpu.server), gen: med(sel, (j) => j.cpu.gen), genUs: med(sel, (j) => j.gen_cpu_us_per_hs),
        others: med(sel, (j) => j.cpu.others),
        rttP50: med(sel, (j) => j.rtt.p50_us), rttP99: med(sel, (j) => j.rtt.p99_us),
        connPerSec: med(sel, (j) => j.connections_per_sec),
        verified: sel.use.reduce((t, r) => t + r.json.pq.verified, 0), completed: sel.use.reduce((t, r) => t + r.json.pq.completed, 0),
        keyChecks: sel.use.reduce((t, r) => t + r.json.key_checks, 0),
        conc: j0.concurrency, perConn: j0.per_conn, pool: j0.pq.pool, verifyEvery: j0.pq.verify_every, alg: j0.algorithm,
    };
}

function pqRelaySummary(sel) {
    const r = relaySummary(sel);
    if (!r) return null;
    return { ...r, cpuUs: med(sel, (j) => (j.cpu.server * j.seconds * 1e6) / j.delivered),
        genUs: med(sel, (j) => (j.cpu.gen * j.seconds * 1e6) / j.delivered),
        frames: sel.use.reduce((t, x) => t + (x.json.pq?.frames_opened ?? 0), 0) };
}

function pqLatencySummary(sel) {
    const l = latencySummary(sel);
    if (!l) return null;
    return { ...l, cpuUs: med(sel, (j) => (j.cpu.server * j.seconds * 1e6) / j.delivered) };
}

// ---------------------------------------------------------------------------------------------
// Plots

function writePlots(S, records, out, plots) {
    const dir = path.join(out, 'plotdata');
    fs.mkdirSync(dir, { recursive: true });
    fs.mkdirSync(plots, { recursive: true });
    const have = (f) => KINDS.filter((k) => f(k));
    const made = [];
    const gp = (script, servers) => {
        if (servers.length === 0) return;
        const labels = servers.map((k) => `"${LABEL[k]}"`).join(' ');
        const vars = `plotdir='${path.join(HERE, 'plot')}'; datadir='${dir}'; outdir='${plots}'; ` +
            `servers='${servers.join(' ')}'; labels='${labels}'`;
        const r = spawnSync('gnuplot', ['-e', vars, path.join(HERE, 'plot', script)], { encoding: 'utf8' });
        if (r.status !== 0) console.error(`gnuplot ${script}: ${r.stderr || r.error}`);
        else made.push(script.replace(/\.gp$/, '.png'));
    };
    for (const k of KINDS) {
        const idle = S.idle[k];
        if (idle) {
            const rows = [[0, idle.base], ...idle.steps.map((s) => [s.held, s.rss])];
            fs.writeFileSync(path.join(dir, `memory_${k}.dat`), `# held rss_mib\n${rows.map(([h, r]) => `${h} ${(r / 2 ** 20).toFixed(3)}`).join('\n')}\n`);
        }
        const lat = S.latency[k];
        if (lat) fs.copyFileSync(path.join(out, 'runs', `${lat.medianRun}.cdf`), path.join(dir, `latency_${k}.dat`));
    }
    gp('memory.gp', have((k) => S.idle[k]));
    gp('latency.gp', have((k) => S.latency[k]));
    const bars = (name, f) => {
        const ks = have((k) => Number.isFinite(f(k)?.perSec));
        fs.writeFileSync(path.join(dir, `${name}.dat`), `# index server value min max colour\n${ks.map((k, i) => {
            const v = f(k);
            return `${i} "${LABEL[k]}" ${v.perSec} ${v.min ?? v.perSec} ${v.max ?? v.perSec} ${COLOUR[k]}`;
        }).join('\n')}\n`);
        return ks;
    };
    gp('throughput.gp', bars('throughput', (k) => S.relay[k]));
    gp('connrate.gp', bars('connrate', (k) => S.connrate[k] && {
        perSec: S.connrate[k].first.perSec,
        min: Math.min(...chosen(records, 'connrate', k, 3).use.map((r) => r.json.rounds[0].per_sec)),
        max: Math.max(...chosen(records, 'connrate', k, 3).use.map((r) => r.json.rounds[0].per_sec)),
    }));
    // Post-quantum: handshakes/s per variant, and relay plain vs encrypted, side by side.
    const pqBars = (name, scen, f) => {
        const vs = Object.keys(PQ_VARIANTS[scen]).filter((v) => S[scen][v]);
        const colours = [0x1f77b4, 0xff7f0e, 0x9467bd];
        fs.writeFileSync(path.join(dir, `${name}.dat`), `# index label value min max colour\n${vs.map((v, i) => {
            const x = S[scen][v];
            return `${i} "${f(v)}" ${x.perSec} ${x.min} ${x.max} ${colours[i % colours.length]}`;
        }).join('\n')}\n`);
        return vs.length;
    };
    const nh = pqBars('pq_handshake', 'pq-handshake', (v) => ({ mlkem: 'ML-KEM-768', hybrid: 'X25519MLKEM768', rekey: 'rekeys (ML-KEM)' })[v]);
    const nr = pqBars('pq_relay', 'pq-relay', (v) => ({ plain: 'plaintext', enc: 'PQ session (enc)' })[v]);
    if (nh > 0 && nr > 0) {
        const vars = `plotdir='${path.join(HERE, 'plot')}'; datadir='${dir}'; outdir='${plots}'`;
        const r = spawnSync('gnuplot', ['-e', vars, path.join(HERE, 'plot', 'pq.gp')], { encoding: 'utf8' });
        if (r.status !== 0) console.error(`gnuplot pq.gp: ${r.stderr || r.error}`);
        else made.push('pq.png');
    }
    if (S.fanout.volli) {
        fs.copyFileSync(path.join(out, 'runs', `${S.fanout.volli.medianRun}.cdf`), path.join(dir, 'fanout_read.dat'));
        fs.copyFileSync(path.join(out, 'runs', `${S.fanout.volli.medianRun}.cdf.socket`), path.join(dir, 'fanout_socket.dat'));
        gp('fanout.gp', ['volli']);
    }
    return made;
}

// ---------------------------------------------------------------------------------------------
// RESULTS.md

function summaryOf(id, j) {
    switch (id) {
    case 'connrate': return `${int(j.rounds[0].per_sec)} connections/s, server ${fix(j.rounds[0].cpu.server, 2)} cores`;
    case 'relay': return `${int(j.per_sec)} msg/s, server ${fix(j.cpu.server, 2)} cores`;
    case 'latency': return `p99 ${us(j.latency.p99_us)}, server ${fix(j.cpu.server, 2)} cores`;
    case 'fanout': return `${j.cycles.map((c) => `${fix(c.online_ms, 1)} ms`).join(', ')}`;
    case 'pq-handshake': return `${int(j.per_sec)} handshakes/s, server ${fix(j.server_cpu_us_per_hs, 0)} µs CPU each, ${fix(j.cpu.server, 2)} cores`;
    case 'pq-relay': return `${int(j.per_sec)} msg/s, server ${fix(j.cpu.server, 2)} cores`;
    default: return '';
    }
}

export function writeReport({ records, profiles, meta, out, results, plots, dryRun = false }) {
    const reps = meta.reps;
    limits = { others: meta.maxOthers, stall: meta.maxStall };
    const sel = (scen, k) => chosen(records, scen, k, reps);
    const S = { idle: {}, connrate: {}, relay: {}, latency: {}, fanout: {}, discover: {}, 'discover-offline': {} };
    const fns = { idle: idleSummary, connrate: connSummary, relay: relaySummary, latency: latencySummary,
        fanout: fanoutSummary, discover: discoverSummary, 'discover-offline': discoverSummary };
    // A summary that cannot be made (e.g. runs merged from a sitting whose generator printed
    // less) leaves its section empty rather than losing the whole report.
    const safe = (f, x, what) => {
        try {
            return f(x);
        } catch (e) {
            console.error(`report: ${what}: ${e.message}`);
            return null;
        }
    };
    for (const scen of Object.keys(S)) for (const k of KINDS) S[scen][k] = safe(fns[scen], sel(scen, k), `${scen}/${k}`);
    // Post-quantum scenarios: Volli only, keyed by variant.
    const pqFns = { 'pq-handshake': pqHandshakeSummary, 'pq-relay': pqRelaySummary, 'pq-latency': pqLatencySummary };
    const P = {};
    for (const [scen, f] of Object.entries(pqFns)) {
        P[scen] = {};
        for (const v of Object.keys(PQ_VARIANTS[scen])) P[scen][v] = safe(f, chosen(records, scen, 'volli', reps, v), `${scen}/${v}`);
    }

    const V = (scen) => S[scen].volli;
    const targets = [];
    const target = (id, what, measured, met) => targets.push({ id, what, measured, met });
    if (V('idle')) target('idle', 'at most 2 KiB resident memory per idle registered connection',
        `${bytes(V('idle').last.perConn)} at ${int(V('idle').last.held)} connections (slope ${bytes(V('idle').slope)})`,
        V('idle').last.perConn <= 2048);
    if (V('relay')) {
        const pj = S.relay.peerjs?.perSec;
        const ws = S.relay.ws?.perSec;
        target('relay', 'relay throughput at least 5× PeerJS and above the Node ws relay',
            `${int(V('relay').perSec)} msg/s = ${ratio(V('relay').perSec, pj)} PeerJS, ${ratio(V('relay').perSec, ws)} ws relay`,
            Number.isFinite(pj) && Number.isFinite(ws) ? V('relay').perSec >= 5 * pj && V('relay').perSec > ws : null);
    }
    if (V('latency')) target('latency', `p99 relay latency under 1 ms at ${int(V('latency').target)} msg/s`,
        `p99 ${us(V('latency').p99)}`, V('latency').p99 < 1000 && V('latency').skipped === 0);
    if (V('fanout')) target('fanout', `presence fan-out to ${int(V('fanout').subs)} subscribers under 100 ms`,
        `${fix(V('fanout').later, 1)} ms until the last subscriber's socket has it (returning user; ` +
        `read by the generator ${fix(V('fanout').laterRead, 1)} ms; first-ever registration ${fix(V('fanout').first, 1)} ms)`,
        V('fanout').later < 100);
    const hm = P['pq-handshake'].mlkem;
    if (hm) target('pq-handshake', 'at least 5,000 post-quantum handshakes per second per core (ML-KEM-768)',
        `${int(hm.perSec)}/s with the server on one core (it used ${fix(hm.server, 2)} of it); ` +
        `${fix(hm.cpuUs, 0)} µs of server CPU each = ${int(hm.perCore)}/s per fully used core` +
        (P['pq-handshake'].hybrid ? `; X25519MLKEM768 ${int(P['pq-handshake'].hybrid.perSec)}/s, ${fix(P['pq-handshake'].hybrid.cpuUs, 0)} µs` : ''),
        hm.perSec >= 5000);
    const missed = targets.filter((t) => t.met === false).map((t) => t.id);
    if (dryRun) return { missed };

    const made = writePlots({ ...S, ...P }, records, out, plots);
    const relPlot = (f) => path.relative(path.dirname(results), path.join(plots, f));
    // Cluster mode (sections 9 to 11): bench/report-cluster.mjs, on the same run selection.
    const CL = clusterReport({ records, reps, chosen, dataDir: path.join(out, 'plotdata'), plots,
        plotDir: path.join(HERE, 'plot'), relPlot });
    made.push(...CL.made);
    const L = [];
    const p = (s = '') => L.push(s);
    const row = (cells) => p(`| ${cells.join(' | ')} |`);
    const kinds = KINDS.filter((k) => Object.values(S).some((x) => x[k]) ||
        (k === 'volli' && Object.values(P).some((x) => Object.values(x).some(Boolean))));

    p('# Volli Signal benchmark results');
    p();
    p(`Generated by \`make bench\`${meta.quick ? ' (QUICK=1: one run each, smaller sizes; not for quoting)' : ''} on ${meta.date.slice(0, 10)} ` +
      `(${meta.date.slice(11, 16)} UTC), commit \`${meta.commit}\`${meta.dirty ? ' with uncommitted changes' : ''}, ` +
      `in ${fix(meta.elapsed / 60, 1)} minutes.`);
    p();
    p(`- Command: \`${meta.command}\``);
    p(`- Machine: ${meta.cpu}, ${meta.cores} cores, ${fix(meta.memGiB, 0)} GiB, Linux ${meta.kernel}; ` +
      `open files per process ${meta.fdLimit.replace(' ', ' soft / ')} hard (cannot be raised here).`);
    p(`- Servers: \`${meta.volliVersion}\` (Release build; flags \`${meta.volliFlags.join(' ')}\`), ` +
      `PeerJS server \`peer\` ${meta.peerVersion} and a Node \`ws\` ${meta.wsVersion} relay ` +
      `(bench/peers/ws-relay.mjs), both on Node ${meta.node}.`);
    if (meta.sittings?.length > 1) {
        p('- This file merges sittings (`make bench ONLY=...` re-runs some scenarios and keeps the others\' runs):');
        for (const st of meta.sittings) {
            p(`  - ${st.scenarios.join(', ')}: \`${st.command}\` on ${st.date.slice(0, 10)} (${st.date.slice(11, 16)} UTC), ` +
              `commit \`${st.commit}\`${st.dirty ? ' with uncommitted changes' : ''}, ${fix(st.elapsed / 60, 1)} minutes, ` +
              `machine load before it ${fix(st.loadBefore, 2)} cores.`);
        }
    }
    p(`- Medians of ${reps} run${reps > 1 ? 's' : ''} per figure; a run during which other processes used more than ` +
      `${meta.maxOthers} CPU cores, or before which the stall probe lost more than ${meta.maxStall}% of a core, is repeated ` +
      `(see [Runs](#runs)). Machine load before the sitting: ${fix(meta.loadBefore, 2)} cores.`);
    p();

    p('## Summary');
    p();
    p('Ratios are the other server\'s figure divided by ours: above 1× means more memory, more time, or more throughput than Volli Signal.');
    p();
    row(['Metric', ...kinds.map((k) => LABEL[k])]);
    row(['---', ...kinds.map(() => '---:')]);
    const line = (name, f, fmt, rel = true) => {
        const ours = f('volli');
        row([name, ...kinds.map((k) => {
            const v = f(k);
            if (!Number.isFinite(v)) return 'n/a';
            return k === 'volli' || !rel ? fmt(v) : `${fmt(v)} (${ratio(v, ours)})`;
        })]);
    };
    line('Idle: resident memory per registered connection', (k) => S.idle[k]?.last.perConn, bytes);
    line('Idle: connections held (open-file limit ' + (V('idle')?.fdLimit ?? 'n/a') + ')', (k) => S.idle[k]?.last.held, int, false);
    line('Connection rate: connect + hello + register per s', (k) => S.connrate[k]?.first.perSec, int);
    line('Relay throughput, delivered msg/s (1,000 pairs)', (k) => S.relay[k]?.perSec, int);
    line(`Relay latency p50 at ${int(V('latency')?.target ?? 20000)} msg/s`, (k) => S.latency[k]?.p50, us);
    line(`Relay latency p99 at ${int(V('latency')?.target ?? 20000)} msg/s`, (k) => S.latency[k]?.p99, us);
    line(`Relay latency p99.9 at ${int(V('latency')?.target ?? 20000)} msg/s`, (k) => S.latency[k]?.p999, us);
    line('Relay latency max', (k) => S.latency[k]?.max, us);
    if (V('fanout')) row([`Presence fan-out to ${int(V('fanout').subs)} subscribers (last one knows)`, `${fix(V('fanout').later, 1)} ms`, ...kinds.slice(1).map(() => 'no presence')]);
    if (V('discover')) row(['Discover (online user) per s, p99', `${int(V('discover').perSec)}, ${us(V('discover').p99)}`, ...kinds.slice(1).map(() => 'no discover')]);
    const noPq = kinds.slice(1).map(() => 'no PQ sessions');
    for (const [v, name] of [['mlkem', 'ML-KEM-768'], ['hybrid', 'X25519MLKEM768']]) {
        const h = P['pq-handshake'][v];
        if (h) row([`PQ handshakes per s on one core, ${name} (server CPU each)`, `${int(h.perSec)} (${fix(h.cpuUs, 0)} µs)`, ...noPq]);
    }
    if (P['pq-relay'].plain && P['pq-relay'].enc) {
        row(['Relay msg/s, PQ sessions vs plaintext (same run)', `${int(P['pq-relay'].enc.perSec)} vs ${int(P['pq-relay'].plain.perSec)} ` +
            `(${fix(P['pq-relay'].enc.perSec / P['pq-relay'].plain.perSec, 2)}×)`, ...noPq]);
    }
    const noCluster = kinds.slice(1).map(() => 'no cluster mode');
    for (const [name, value] of CL.summary) row([name, value, ...noCluster]);
    p();

    p('## Targets');
    p();
    row(['Target', 'Measured', 'Met']);
    row(['---', '---', '---']);
    for (const t of targets) row([t.what, t.measured, t.met === null ? 'n/a (comparison missing)' : t.met ? 'yes' : '**missed**']);
    p();

    p('## How the two cores are shared');
    p();
    p('The server under test runs on CPU 0 (`taskset -c 0`); every load-generator process runs on CPU 1 ' +
      '(`taskset -c 1`), so the generator never takes CPU from the server. The Node servers\' helper threads ' +
      '(V8 garbage collection, libuv pool) are confined to CPU 0 with them. Loopback TCP processing (softirq) ' +
      'runs on the core that sends and is reported separately as "net". For every run the generator reads ' +
      '`/proc/stat` and `/proc/PID/stat` of the server and of itself at the start and end of the measured phase; ' +
      'the CPU the rest of the machine used is the machine\'s busy time minus ours, minus softirq. ' +
      'Other engineers share this machine, so a run where others used more than ' +
      `${meta.maxOthers} cores is repeated, and the quoted figure is the median of the clean runs.`);
    p();
    const probes = records.filter((r) => r.probe);
    p(`${meta.virtual ? 'The machine is a virtual machine: its hypervisor can take a core away without the guest\'s `/proc/stat` showing it. ' : ''}` +
      'Before every run a *stall probe* spins one process on each core at once for a second and records how much of ' +
      'that second it was kept off its core, in gaps over 100 µs: time taken by other processes, interrupts' +
      `${meta.virtual ? ' or the hypervisor' : ''}. Over this sitting it lost from ${fix(Math.min(...probes.map((r) => r.stall)), 1)}% ` +
      `to ${fix(Math.max(...probes.map((r) => r.stall)), 1)}% (median ${fix(median(probes.map((r) => r.stall)), 1)}%), ` +
      'in gaps of up to ' + us(Math.max(...probes.map((r) => r.probe.maxGapUs))) + '. Every scenario keeps both cores busy, ' +
      `so a run after a probe over ${meta.maxStall}% is repeated like a disturbed one.`);
    p();

    // 1. Idle
    p('## 1. Idle connections and memory');
    p();
    const iv = V('idle');
    if (iv) {
        p(`Registered, idle WebSocket connections are opened by ${iv.procs} generator processes (each process needs ` +
          'one descriptor per connection too, so one process could not hold them all), each from its own ' +
          `127.0.0.x source addresses. The server process\'s open-file limit, read from /proc, is ${iv.fdLimit}; ` +
          '"max" asks for that limit less 16 descriptors the server needs for itself. Resident memory (VmRSS) is read ' +
          'after the connections settle; the per-connection figure is (RSS − RSS at start) / connections, so it includes ' +
          'everything the server allocated for them (its SQLite page cache too, for Volli); the slope is the increase between the first and last step. ' +
          'Memory does not depend on CPU contention, so idle runs are not repeated when disturbed.');
        p();
        row(['Server', 'Step', 'Connections held', 'RSS', 'Per connection', 'Kernel per socket*']);
        row(['---', '---:', '---:', '---:', '---:', '---:']);
        for (const k of kinds) {
            const s = S.idle[k];
            if (!s) continue;
            row([LABEL[k], 'start', '0', bytes(s.base), '', '']);
            for (const st of s.steps) row(['', int(st.target), int(st.held), bytes(st.rss), bytes(st.perConn), bytes(st.kernelPerConn)]);
            row(['', 'slope', '', '', bytes(s.slope), '']);
        }
        p();
        p('*Kernel memory is not in RSS: growth of the TCP, socket inode, file and epoll slab caches divided by the two ' +
          'sockets (client and server side) of each loopback connection.');
        p();
        const kern = median(kinds.map((k) => S.idle[k]?.last.kernelPerConn).filter(Number.isFinite));
        const ports = meta.portRange.length === 2 ? meta.portRange[1] - meta.portRange[0] + 1 : NaN;
        row(['Connections', ...kinds.filter((k) => S.idle[k]).map((k) => `${LABEL[k]} RSS (extrapolated)`), 'Kernel, server side']);
        row(['---:', ...kinds.filter((k) => S.idle[k]).map(() => '---:'), '---:']);
        for (const n of [100000, 1000000]) {
            row([int(n), ...kinds.filter((k) => S.idle[k]).map((k) => bytes(S.idle[k].at(n))), bytes(kern * n)]);
        }
        p();
        p('What binds before memory:');
        p(`- **Descriptors.** One per connection: here the hard limit is ${meta.fdLimit.split(' ')[1]} per process, ` +
          `which is why the measurement stops near 20,000. 100k needs \`ulimit -n\` and \`--max-connections\` raised; ` +
          `1M is above this kernel\'s \`fs.nr_open\` = ${int(meta.nrOpen)} (the ceiling for any process\'s limit) ` +
          `once the server\'s own descriptors are counted, and needs \`fs.nr_open\` raised too (\`fs.file-max\` = ${int(meta.fileMax)}).`);
        p(`- **Ports.** Each client-side connection to one server address and port needs its own (source address, port) pair: ` +
          `the ephemeral range ${meta.portRange.join('–')} gives ${int(ports)} per source address. A test client needs ` +
          `${int(Math.ceil(100000 / ports))} source addresses for 100k and ${int(Math.ceil(1000000 / ports))} for 1M ` +
          '(the generator takes several 127.0.0.x addresses for this reason); real clients come from many addresses, so this binds only the test.');
        p(`- **Kernel socket memory.** About ${bytes(kern)} per idle TCP socket on the server side, outside RSS: ` +
          `${bytes(kern * 1e6)} at 1M, ${Number.isFinite(iv.at(1e6)) ? `${fix(kern * 1e6 / iv.at(1e6), 1)}× Volli Signal\'s own RSS there` : ''}. ` +
          `Idle sockets hold no buffers, so \`net.ipv4.tcp_mem\` (${meta.tcpMem.join(' ')} pages) only matters under traffic; ` +
          'pings every 30 s are the only traffic an idle connection sees.');
        p();
        if (made.includes('memory.png')) p(`![Resident memory vs connections](${relPlot('memory.png')})`);
        p();
    } else p('No successful run.\n');

    // 2. Connection rate
    p('## 2. Connection rate');
    p();
    const cv = V('connrate');
    if (cv) {
        p(`${int(cv.n)} connections, at most 200 being set up at once. One connection = TCP connect, HTTP upgrade, \`hello\`, ` +
          '`register` with an Ed25519 signature over the hello nonce (made by the generator with OpenSSL), `registered`. ' +
          'The Node ws relay verifies the signature as Volli does but stores nothing; PeerJS has no register step (its ' +
          'id and token are in the URL; ready = its `OPEN` message). For Volli, round 1 binds new ids (a durable SQLite ' +
          'commit before `registered`, batched per loop turn); round 2 repeats the same ids (keys already bound).');
        p();
        row(['Server', 'Per second', 'Ratio to ours', 'Setup p50', 'Setup p99', 'Server CPU', 'Generator CPU']);
        row(['---', '---:', '---:', '---:', '---:', '---:', '---:']);
        for (const k of kinds) {
            const c = S.connrate[k];
            if (!c) continue;
            row([k === 'volli' ? `${LABEL[k]}, new ids` : LABEL[k], int(c.first.perSec), k === 'volli' ? '1×' : ratio(c.first.perSec, cv.first.perSec),
                us(c.first.p50), us(c.first.p99), `${fix(c.first.cpu, 2)} cores`, `${fix(c.first.gen, 2)} cores`]);
            if (c.second) row([`${LABEL[k]}, returning ids`, int(c.second.perSec), '', us(c.second.p50), us(c.second.p99),
                `${fix(c.second.cpu, 2)} cores`, `${fix(c.second.gen, 2)} cores`]);
        }
        p();
        if (made.includes('connrate.png')) p(`![Connection rate](${relPlot('connrate.png')})`);
        p();
    } else p('No successful run.\n');

    // 3. Relay throughput
    p('## 3. Relay throughput');
    p();
    const rv = V('relay');
    if (rv) {
        p(`${int(rv.pairs)} registered sender/receiver pairs; each sender sends ${rv.bytes}-byte offers ` +
          `(\`{"type":"offer","to":..,"offer":{..sdp..}}\`, PeerJS: \`{"type":"OFFER","dst":..,"payload":{..}}\`) ` +
          `to its receiver, at most ${rv.window} in flight per pair: a new offer leaves when one arrives. ` +
          'Delivered messages are counted over the measured seconds after a 1 s warm-up; order per pair is checked.');
        p();
        row(['Server', 'Delivered msg/s', 'Ratio to ours', 'Latency p50 under load', 'p99', 'Server CPU', 'Generator CPU', 'Loopback softirq']);
        row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
        for (const k of kinds) {
            const r = S.relay[k];
            if (!r) continue;
            row([LABEL[k], int(r.perSec), k === 'volli' ? '1×' : ratio(r.perSec, rv.perSec), us(r.p50), us(r.p99),
                `${fix(r.server, 2)} cores`, `${fix(r.gen, 2)} cores`, `${fix(r.net, 2)} cores`]);
        }
        p();
        p(rv.server > 0.9 ? 'Volli Signal\'s core is saturated: the figure is the server\'s limit.'
            : `Volli Signal used ${fix(rv.server, 2)} of its core while the generator used ${fix(rv.gen, 2)} of its own: ` +
              'the generator or the loopback network, not the server, set this figure, so it is a lower bound.');
        p();
        if (made.includes('throughput.png')) p(`![Relay throughput](${relPlot('throughput.png')})`);
        p();
    } else p('No successful run.\n');

    // 4. Latency
    p('## 4. Relay latency at a fixed rate');
    p();
    const lv = V('latency');
    if (lv) {
        p(`${int(lv.target)} offers per second in total, spread round-robin over the pairs, sent on a fixed schedule ` +
          '(open loop: a slow server is not given time to catch up). The sender writes CLOCK_MONOTONIC into the payload; ' +
          'the receiver, in the same process, subtracts it from the time it reads the frame. Latency therefore includes ' +
          'both kernels\' loopback paths and the generator\'s own event loop. Offers sent in the measured seconds count.');
        p();
        p('The generator busy-polls (never sleeps in epoll) on its own core during this scenario, so its wake-up ' +
          'time is not added to the latency.');
        p();
        row(['Server', 'Achieved msg/s', 'p50', 'p90', 'p99', 'p99.9', 'max', 'p99 ratio to ours', 'p99 in socket*', 'Server CPU', 'Stall probe']);
        row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
        for (const k of kinds) {
            const l = S.latency[k];
            if (!l) continue;
            const st = sel('latency', k).use.map((r) => r.probe);
            row([LABEL[k], int(l.rate) + (l.skipped ? ` (${int(l.skipped)} not sent: over 2 s behind)` : ''), us(l.p50), us(l.p90),
                us(l.p99), us(l.p999), us(l.max), k === 'volli' ? '1×' : ratio(l.p99, lv.p99), us(l.sockP99), `${fix(l.server, 2)} cores`,
                `${fix(median(st.map((x) => x.stalled)), 1)}%, ${fix(median(st.map((x) => x.over1ms)), 0)} gaps >1 ms/s`]);
        }
        p();
        p('*"In socket": until the kernel put the offer in the receiver\'s socket (SO_TIMESTAMPNS), i.e. without the ' +
          'generator\'s own reading.');
        p();
        const hist = lv.handling[0];
        if (hist) {
            const total = hist.buckets[hist.buckets.length - 1].n;
            const upTo = (le) => (hist.buckets.find((b) => b.le >= le) || { n: total }).n;
            p(`Volli Signal\'s own \`volli_request_duration_seconds{type="offer"}\` histogram for one quoted run: ` +
              `${fix(100 * upTo(5e-5) / total, 3)}% of ${int(total)} offers were handled within 50 µs of their frame being read, ` +
              `${int(total - upTo(0.001))} took over 1 ms. Time spent before the server reads a frame (waiting to be ` +
              'scheduled) or after it writes one is not in this histogram: see the scheduling delays in [Profiles](#profiles).');
            p();
        }
        const gaps = median(sel('latency', 'volli').use.map((r) => r.probe.over1ms));
        p('"Stall probe": the median, over the quoted runs, of the share of a second the probe run just before was kept ' +
          'off its core, and of its gaps over 1 ms per second. While the server\'s or the generator\'s core is taken ' +
          'away, every offer in flight waits: a p99 under 1 ms needs less than 1% of the time spent in gaps over 1 ms. ' +
          `The probes before Volli Signal\'s quoted runs saw ${fix(gaps, 0)} such gaps per second. During the runs ` +
          'themselves, the generator\'s busy-polling loop (whose turns take microseconds) found itself kept off its own ' +
          `core ${fix(lv.genStalled, 2)}% of the time, with ${fix(lv.genGaps, 1)} gaps over 1 ms per second (median of the quoted runs; ` +
          Object.keys(LABEL).filter((k) => S.latency[k]).map((k) => `${LABEL[k]} ${fix(S.latency[k].genStalled, 2)}%`).join(', ') + ').');
        p();
        if (made.includes('latency.png')) p(`![Relay latency percentiles](${relPlot('latency.png')})`);
        p();
    } else p('No successful run.\n');

    // 5. Fan-out
    p('## 5. Presence fan-out');
    p();
    const fv = V('fanout');
    if (fv) {
        p(`${int(fv.subs)} registered connections subscribe to one user id. That user then connects and registers, ` +
          `and later closes its socket, ${fv.cycles} times. Time is measured from the moment its \`register\` is queued ` +
          '(online) or its socket is closed (offline) until the presence message is in the last subscriber\'s socket ' +
          '(the kernel\'s receive timestamp, SO_TIMESTAMPNS): that is what the server controls, whereas one generator ' +
          'process reading 10,000 sockets in turn is an artifact of the test (real subscribers read their own socket). ' +
          'The time at which the generator read it is shown too. The first cycle binds the key (a durable store commit ' +
          'before anyone is told); later cycles are a returning user.');
        p();
        row(['Case', 'In the last subscriber\'s socket', 'Read by the generator', '`registered` reply']);
        row(['---', '---:', '---:', '---:']);
        row(['Online, first registration', `${fix(fv.first, 1)} ms`, '', `${fix(fv.firstReg, 1)} ms`]);
        row(['Online, returning user (median of later cycles)', `${fix(fv.later, 1)} ms`, `${fix(fv.laterRead, 1)} ms`, `${fix(fv.laterReg, 1)} ms`]);
        row(['Offline (socket closed)', `${fix(fv.offline, 1)} ms`, `${fix(fv.offlineRead, 1)} ms`, '']);
        row(['Worst online cycle of the quoted runs', `${fix(fv.worst, 1)} ms`, '', '']);
        p();
        p(`Half of the subscribers had it within ${us(fv.p50)}; the arrivals are spread evenly (see the plot), i.e. ` +
          'the server writes the 10,000 messages one socket after another and the last one waits for all the others. ' +
          'On loopback the receiving side\'s TCP processing also runs on the server\'s core, inside its send calls, ' +
          'which a real network would take elsewhere. PeerJS and the ws relay have no presence.');
        p();
        if (made.includes('fanout.png')) p(`![Presence arrival times](${relPlot('fanout.png')})`);
        p();
    } else p('No successful run.\n');

    // 6. Discover
    p('## 6. Discover');
    p();
    for (const [id, what] of [['discover', 'online users (answered from the in-memory directory)'],
        ['discover-offline', 'users who registered and left (their key is read from the SQLite store)']]) {
        const d = S[id].volli;
        if (!d) continue;
        p(`- **${what}**: ${int(d.perSec)} requests/s, latency p50 ${us(d.p50)}, p99 ${us(d.p99)}, p99.9 ${us(d.p999)} ` +
          `(${d.clients} connections × ${d.window} requests in flight; server ${fix(d.server, 2)} cores, generator ${fix(d.gen, 2)}).`);
    }
    p();
    p('Latency here is measured in a closed loop at full load, so it includes queueing behind the other requests in flight.');
    p();

    // 7. Post-quantum handshakes
    p('## 7. Post-quantum handshakes');
    p();
    const H = P['pq-handshake'];
    const h0 = H.mlkem ?? H.hybrid ?? H.rekey;
    if (h0) {
        p(`The server runs on one core (CPU 0), so handshakes per second is a per-core figure. ${h0.conc} connections at a ` +
          'time, each: TCP connect, WebSocket upgrade, `hello` (nonce and `serverKey`), `pq_handshake` ' +
          '(docs/protocol.md, "Post-quantum session"), `pq_handshake_response`; then the generator resets the connection ' +
          '(no TIME_WAIT) and opens the next. The server does, per handshake, a JSON parse, the base64 decoding of the ' +
          '1,184-byte (1,216 for the hybrid) client key, the FIPS 203 modulus check and ML-KEM-768 encapsulation (our ' +
          'own implementation on OpenSSL 3.0\'s SHA-3: Debian\'s OpenSSL has no ML-KEM), for the hybrid an ephemeral ' +
          'X25519 key pair and exchange, the transcript hash, HKDF, an Ed25519 signature, and the response. Handshakes ' +
          'answered in the measured seconds (after a 1 s warm-up) count; "server CPU per handshake" is the server ' +
          'process\'s utime + stime (/proc/PID/stat) over the same seconds divided by them, and includes its share of the ' +
          'connection work (accept, upgrade, hello, close).');
        p();
        p(`What the generator does, so that the server\'s cost is what is measured: it makes ${h0.pool} client key pairs ` +
          'once at start-up (ML-KEM-768, plus X25519 for the hybrid) and the handshakes take them in turn, with their base64 ' +
          'encoded once (the server encapsulates afresh every time, so reusing client keys changes nothing on its side). ' +
          'It checks every response (session id, algorithm, ciphertext and signature lengths); for one connection in ' +
          `${h0.verifyEvery} it also verifies the Ed25519 signature over TH against the hello\'s \`serverKey\`, decapsulates, ` +
          'derives both keys with HKDF, and proves them by sending a sealed `ping` and opening the sealed `pong` before ' +
          'it closes. In the rekey variant every handshake\'s keys are derived (each rekey travels sealed under the keys ' +
          'of the one before, and the response switches them), so there the generator does as much crypto as the server. ' +
          'The crypto is the server\'s own src/crypto, compiled into the generator; tests/integration/87-pq-session ' +
          'checks it against an independent Node client.');
        p();
        row(['Variant', 'Handshakes/s (server on 1 core)', 'Server CPU per handshake', 'Per fully used core*', 'Server core used',
            'Generator CPU per handshake', 'Response time p50 / p99**', 'Signatures verified, keys derived']);
        row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
        for (const [v, label] of Object.entries(PQ_VARIANTS['pq-handshake'])) {
            const h = H[v];
            if (!h) continue;
            row([label, `${int(h.perSec)} (${int(h.min)}–${int(h.max)})`, `${fix(h.cpuUs, 0)} µs`, int(h.perCore),
                `${fix(h.server, 2)} cores`, `${fix(h.genUs, 0)} µs`, `${us(h.rttP50)} / ${us(h.rttP99)}`,
                `${int(h.verified)} of ${int(h.completed)}, ${int(h.keyChecks)} sealed pings`]);
        }
        p();
        p('*1 s divided by the server CPU per handshake: the rate the server would reach with its core all to itself. ' +
          '**From sending `pq_handshake` to reading the response, with ' + h0.conc + ' handshakes in flight: mostly queueing ' +
          'behind the others.');
        p();
        const cr = V('connrate');
        if (cr) p(`For comparison, the plain connection rate (section 2: connect, upgrade, hello, register with an Ed25519 ` +
            `verification and a store lookup) is ${int(cr.second?.perSec ?? cr.first.perSec)}/s for returning ids.\n`);
        const sat = Object.values(H).filter(Boolean).every((h) => h.server > 0.9);
        p(sat ? 'The server\'s core was saturated in every variant: the handshake rates are its limits.'
            : 'Where the server used less than its whole core, the generator (on the other core) or other load on the ' +
              'machine set the rate; the CPU time per handshake, and the per-core figure from it, still hold. ' +
              `Other processes used a median of ${Object.values(H).filter(Boolean).map((h) => fix(h.others, 2)).join(' / ')} ` +
              'cores during these runs.');
        p();
    } else p('No successful run.\n');

    // 8. Encrypted relay
    p('## 8. Relay inside post-quantum sessions');
    p();
    const R = P['pq-relay'];
    if (R.plain || R.enc) {
        const r0 = R.plain ?? R.enc;
        p(`The relay throughput scenario of section 3 (${int(r0.pairs)} pairs, ${r0.bytes}-byte offers, ${r0.window} in flight ` +
          'per pair), twice in the same sitting, alternating run by run with a fresh server each time: once in plaintext, ' +
          'once with every connection (senders and receivers) in a PQ session made with ML-KEM-768 before it registers. ' +
          'Then every frame both ways is `{"type":"enc","seq":N,"ct":...}`: the sender seals, the server opens (JSON, base64, ' +
          'AES-256-GCM, the sequence number), relays, and seals again for the receiver, who opens it. The generator does ' +
          'its sealing and opening with the server\'s own functions (reading the server\'s fixed `enc` layout directly ' +
          'instead of through a JSON parser).');
        p();
        row(['Case', 'Delivered msg/s', 'Latency p50 under load', 'p99', 'Server CPU', 'Server CPU per message', 'Generator CPU']);
        row(['---', '---:', '---:', '---:', '---:', '---:', '---:']);
        for (const [v, label] of Object.entries(PQ_VARIANTS['pq-relay'])) {
            const x = R[v];
            if (!x) continue;
            row([label, `${int(x.perSec)} (${int(x.min)}–${int(x.max)})`, us(x.p50), us(x.p99), `${fix(x.server, 2)} cores`,
                `${fix(x.cpuUs, 2)} µs`, `${fix(x.gen, 2)} cores`]);
        }
        if (R.plain && R.enc) {
            row(['**Encrypted / plaintext**', `**${fix(R.enc.perSec / R.plain.perSec, 3)}×**`, `${fix(R.enc.p50 / R.plain.p50, 2)}×`,
                `${fix(R.enc.p99 / R.plain.p99, 2)}×`, '', `**${fix(R.enc.cpuUs / R.plain.cpuUs, 2)}×**`, '']);
        }
        p();
        p('Latency here is closed-loop at full load (every pair keeps its window full), so it is mostly queueing: the ' +
          'fixed-rate comparison below is the one to read for latency.');
        p();
        const L8 = P['pq-latency'];
        if (L8.plain || L8.enc) {
            const l0 = L8.plain ?? L8.enc;
            p(`At a fixed ${int(l0.target)} offers per second (section 4\'s open-loop method, the generator busy-polling), ` +
              'plaintext and PQ sessions alternating:');
            p();
            row(['Case', 'Achieved msg/s', 'p50', 'p90', 'p99', 'p99.9', 'max', 'Server CPU', 'Server CPU per message']);
            row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
            for (const [v, label] of Object.entries(PQ_VARIANTS['pq-latency'])) {
                const x = L8[v];
                if (!x) continue;
                row([label, int(x.rate) + (x.skipped ? ` (${int(x.skipped)} not sent: over 2 s behind)` : ''), us(x.p50), us(x.p90),
                    us(x.p99), us(x.p999), us(x.max), `${fix(x.server, 2)} cores`, `${fix(x.cpuUs, 2)} µs`]);
            }
            if (L8.plain && L8.enc) row(['**Encrypted / plaintext**', '', `${fix(L8.enc.p50 / L8.plain.p50, 2)}×`,
                `${fix(L8.enc.p90 / L8.plain.p90, 2)}×`, `**${fix(L8.enc.p99 / L8.plain.p99, 2)}×**`,
                `${fix(L8.enc.p999 / L8.plain.p999, 2)}×`, '', '', `${fix(L8.enc.cpuUs / L8.plain.cpuUs, 2)}×`]);
            p();
        }
        if (made.includes('pq.png')) p(`![Post-quantum handshakes and encrypted relay](${relPlot('pq.png')})`);
        p();
    } else p('No successful run.\n');

    for (const l of CL.lines) p(l);

    // Profiles
    if (profiles.length) {
        p('## Profiles');
        p();
        p('Volli Signal\'s CPU time at its limits (connection rate, relay throughput) and in any scenario whose target ' +
          'was missed: `perf record -e cpu-clock -F 999 -p SERVER` over the measured phase of one extra run. Self time ' +
          'per library, then per function (over 0.8%). The Release build inlines small functions into their callers; ' +
          'Debian\'s libcrypto has no symbols installed, so its time shows per library only.');
        p();
        for (const pr of profiles) {
            const j = pr.rec?.json;
            p(`### ${pr.scenario}${pr.variantLabel ? `, ${pr.variantLabel}` : ''}${j ? ` (this run: ${summaryOf(pr.scenario, j)}; others ${fix(pr.rec.others, 2)} cores)` : ''}`);
            p();
            if (pr.error || !pr.top?.length) {
                p(`No profile: ${pr.error || 'no samples'}.`);
                p();
                continue;
            }
            p(pr.dsos.filter((d) => d.dso).map((d) => `${d.dso.replace('[kernel.kallsyms]', 'kernel')} ${fix(d.pct, 1)}%`).join(', ') + '.');
            p();
            if (pr.sched) {
                p(`Scheduling (\`perf sched latency\`, same window): the server ran ${fix(pr.sched.runtimeMs, 0)} ms in ` +
                  `${int(pr.sched.switches)} time slices; from being woken to running it waited ${fix(pr.sched.avgMs, 3)} ms on ` +
                  `average and ${fix(pr.sched.maxMs, 2)} ms at most.`);
                p();
            }
            row(['Self %', 'Where', 'Function']);
            row(['---:', '---', '---']);
            for (const t of pr.top) if (t.symbol && !/^0x[0-9a-f]+$/.test(t.symbol)) row([fix(t.pct, 2), t.kernel ? 'kernel' : t.dso, `\`${t.symbol}\``]);
            p();
        }
    }

    // Runs
    p('## Runs');
    p();
    p('Every run of the sitting. "Others" is the CPU (in cores, of 2) that processes other than the server and the ' +
      'generator used during the measured phase; "stall probe" is the share of a second the probe just before the run ' +
      'was kept off its core. A run over either threshold is marked disturbed and repeated while the budget lasts.');
    p();
    row(['Scenario', 'Server', 'Run', 'Others (cores)', 'Stall probe', 'Quoted', 'Note']);
    row(['---', '---', '---', '---:', '---:', '---', '---']);
    for (const r of records) {
        const used = [...Object.keys(S), ...Object.keys(P), ...Object.keys(CLUSTER_VARIANTS)].some((sc) => sc === r.scenario && chosen(records, sc, r.kind, reps, r.variant).use.includes(r));
        row([r.variant ? `${r.scenario} (${r.variant})` : r.scenario, LABEL[r.kind], r.run, fix(r.others, 2), `${fix(r.stall, 1)}%`, used ? 'yes' : 'no',
            [r.disturbed ? 'disturbed' : '', r.error ? r.error.replace(/\|/g, '/').replace(/\n/g, ' ').slice(0, 160) : ''].filter(Boolean).join('; ')]);
    }
    p();
    const flagged = [...Object.entries(S).flatMap(([sc]) => kinds.map((k) => [sc, k, chosen(records, sc, k, reps)])),
        ...Object.keys(P).flatMap((sc) => Object.keys(PQ_VARIANTS[sc]).map((v) => [`${sc} (${v})`, 'volli', chosen(records, sc, 'volli', reps, v)])),
        ...Object.keys(CLUSTER_VARIANTS).flatMap((sc) => Object.keys(CLUSTER_VARIANTS[sc]).map((v) => [`${sc} (${v})`, 'volli', chosen(records, sc, 'volli', reps, v)]))]
        .filter(([, , s]) => s.disturbed > 0 || (s.all.length > 0 && s.use.length < reps));
    if (flagged.length) {
        p('Figures not from ' + reps + ' clean runs (the budget ran out while others kept the machine busy or the ' +
          'hypervisor kept taking cores away); the least disturbed runs are quoted:');
        for (const [sc, k, s] of flagged) p(`- ${sc} / ${LABEL[k]}: ${s.use.length} run(s) quoted, ${s.disturbed} of them disturbed.`);
        p();
    }
    fs.writeFileSync(results, L.join('\n'));
    return { missed };
}
