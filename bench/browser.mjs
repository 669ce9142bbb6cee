// Browser benchmark for the SDK: Debian's Chromium (playwright-core) against a real
// volli-signal on 127.0.0.1. Measures, inside the page with performance.now():
//   - connect() -> registered, for a new user (key generated and stored in IndexedDB) and
//     for a returning one (key loaded from IndexedDB);
//   - call(peer, {data: true}) -> data channel open (offer, answer, trickle ICE, DTLS, SCTP);
//   - the same with a fake camera and microphone: call() -> answered.
// N runs each (default 20), reports median / p90 / min / max and writes
// bench/browser-results.md. A measurement, not a test: it fails only if something breaks.
//
// Usage: node bench/browser.mjs [--runs N] [--out FILE]      (cwd = repository root)
// Env:   VOLLI_BIN (default build/volli-signal), VOLLI_CHROMIUM (default /usr/bin/chromium)

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, startServer, stopAll } from '../tests/integration/lib/server.mjs';
import { percentile } from '../tests/integration/lib/util.mjs';
import { CHROMIUM, closeAll, launch, openHarness } from '../tests/e2e/lib/browser.mjs';

function parseArgs(argv) {
    const opts = { runs: 20, out: 'bench/browser-results.md' };
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === '--runs') opts.runs = Number(argv[++i]);
        else if (argv[i] === '--out') opts.out = argv[++i];
        else throw new Error(`unknown argument ${argv[i]} (use --runs N, --out FILE)`);
    }
    if (!Number.isInteger(opts.runs) || opts.runs < 1) throw new Error('--runs wants a count');
    return opts;
}

function summary(name, values) {
    return {
        name,
        runs: values.length,
        median: percentile(values, 50),
        p90: percentile(values, 90),
        min: Math.min(...values),
        max: Math.max(...values),
    };
}

function cpuModel() {
    try {
        const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n')
            .find((l) => l.startsWith('model name'));
        return line ? line.split(':')[1].trim() : os.cpus()[0]?.model ?? 'unknown';
    } catch {
        return os.cpus()[0]?.model ?? 'unknown';
    }
}

function chromiumVersion() {
    try {
        return execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', timeout: 10000,
                                                     stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
        return CHROMIUM;
    }
}

function serverVersion() {
    try {
        return execFileSync(BIN, ['--version'], { encoding: 'utf8', timeout: 10000 }).trim();
    } catch {
        return 'version unknown';
    }
}

async function measureConnect(browser, port, runs) {
    const page = await openHarness(browser, port);
    const fresh = [];
    const again = [];
    for (let i = 0; i < runs; i++) {
        const r = await page.evaluate(async (id) => {
            const { VolliClient } = window.t.sdk;
            const timeOne = async () => {
                const c = new VolliClient({ userId: id });
                const t0 = performance.now();
                await c.connect();
                const ms = performance.now() - t0;
                c.close();
                return ms;
            };
            const first = await timeOne(); // no key yet: generate, store, register
            const second = await timeOne(); // key loaded from IndexedDB
            return { first, second };
        }, `bench-c-${process.pid}-${i}`);
        fresh.push(r.first);
        again.push(r.second);
    }
    await page.context().close();
    return [summary('connect() → registered, new user (key generated + stored)', fresh),
            summary('connect() → registered, returning user (key from IndexedDB)', again)];
}

async function measureCalls(browser, port, runs, media) {
    const a = await openHarness(browser, port);
    const b = await openHarness(browser, port);
    const ida = `bench-a-${process.pid}-${media ? 'm' : 'd'}`;
    const idb = `bench-b-${process.pid}-${media ? 'm' : 'd'}`;
    await a.evaluate((id) => window.t.connect(id), ida);
    await b.evaluate((id) => window.t.connect(id), idb);
    const times = [];
    for (let i = 0; i < runs; i++) {
        const ms = await a.evaluate(async ([peer, withMedia]) => {
            const t0 = performance.now();
            const opts = withMedia ? { audio: true, video: true } : { data: true };
            const pc = await window.t.client.call(peer, opts);
            if (!withMedia) await pc.volliDataChannel;
            return performance.now() - t0;
        }, [idb, media]);
        times.push(ms);
        // Tear down before the next run and wait until the callee saw it.
        const ended = b.waitForFunction((n) => window.t.events
            .filter((e) => e.type === 'callended').length >= n, i + 1);
        await a.evaluate((peer) => window.t.client.hangup(peer), idb);
        await ended;
    }
    await Promise.all([a.context().close(), b.context().close()]);
    return media ? summary('call({audio, video}) → answered (fake camera + microphone)', times)
        : summary('call({data: true}) → data channel open', times);
}

function fmt(ms) {
    return ms.toFixed(1);
}

function report(rows, opts, meta) {
    const lines = [
        '# Browser SDK benchmark',
        '',
        'Written by `bench/browser.mjs`; times in milliseconds, measured inside the page with',
        '`performance.now()`. Two Chromium pages and the server on one machine (loopback).',
        '',
        `- Date: ${meta.date}`,
        `- Machine: ${meta.cpu} (${meta.cores} logical CPUs), ${meta.os}`,
        `- Browser: ${meta.chromium} (headless, playwright-core)`,
        `- Server: ${meta.bin} (${meta.version})`,
        `- Command: \`${meta.command}\``,
        '',
        '| Measurement | Runs | Median | p90 | Min | Max |',
        '|---|---:|---:|---:|---:|---:|',
        ...rows.map((r) => `| ${r.name} | ${r.runs} | ${fmt(r.median)} | ${fmt(r.p90)} | ` +
                    `${fmt(r.min)} | ${fmt(r.max)} |`),
        '',
        'p90 is the nearest-rank 90th percentile. A data-channel call includes offer and answer',
        'through the server, trickle ICE (host candidates on loopback), DTLS and SCTP; the media',
        'call row stops at the applied answer (getUserMedia included), before ICE completes.',
        '',
    ];
    fs.mkdirSync(path.dirname(opts.out), { recursive: true });
    fs.writeFileSync(opts.out, lines.join('\n'));
    return lines.join('\n');
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const server = await startServer();
    const browser = await launch();
    try {
        const rows = [
            ...await measureConnect(browser, server.port, opts.runs),
            await measureCalls(browser, server.port, opts.runs, false),
            await measureCalls(browser, server.port, opts.runs, true),
        ];
        const text = report(rows, opts, {
            date: new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'),
            cpu: cpuModel(),
            cores: os.cpus().length,
            os: `${os.type()} ${os.release()}`,
            chromium: chromiumVersion(),
            version: serverVersion(),
            bin: BIN.startsWith(process.cwd() + path.sep) ? path.relative(process.cwd(), BIN) : BIN,
            command: `${process.env.VOLLI_BIN ? `VOLLI_BIN=${process.env.VOLLI_BIN} ` : ''}` +
                `node bench/browser.mjs${opts.runs !== 20 ? ` --runs ${opts.runs}` : ''}` +
                `${opts.out !== 'bench/browser-results.md' ? ` --out ${opts.out}` : ''}`,
        });
        process.stdout.write(text);
    } finally {
        await closeAll();
        await stopAll();
    }
}

main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
});
