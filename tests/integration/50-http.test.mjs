// Tier 50: plain HTTP on the WebSocket port: /healthz, /metrics (contents and counters that
// move), 404 for everything else, and which paths upgrade.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { Client, closeAllClients, connectAs } from './lib/client.mjs';
import { fetchMetrics, findSamples, httpGet, sampleValue } from './lib/http.mjs';
import { destroyAllRaw, rawHttp, RawWs, upgradeRequest } from './lib/raw.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { scaled, sleep, uid, withTimeout } from './lib/util.mjs';

let srv;
before(async () => {
    srv = await startServer();
});
after(async () => {
    closeAllClients();
    destroyAllRaw();
    await stopAll();
});

/** Value of a sample, 0 when the series has not been exported yet (counters start at 0). */
function val(parsed, name, labels = {}) {
    return sampleValue(parsed, name, labels) ?? 0;
}

/** Polls /metrics until pred(parsed) holds or ms elapse; returns the last parse. */
async function metricsUntil(pred, ms = scaled(2000)) {
    const deadline = Date.now() + ms;
    let m;
    for (;;) {
        m = await fetchMetrics(srv.port);
        if (pred(m) || Date.now() > deadline) return m;
        await sleep(50);
    }
}

describe('http', () => {
    test('GET /healthz answers 200 {"status":"ok"} as application/json', async () => {
        const r = await httpGet(srv.port, '/healthz');
        assert.equal(r.status, 200);
        assert.match(r.headers['content-type'] ?? '', /^application\/json\b/);
        assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
    });

    test('GET /metrics answers Prometheus text with the required families', async () => {
        const m = await fetchMetrics(srv.port);
        const ct = m.response.headers['content-type'] ?? '';
        assert.match(ct, /^text\/plain;\s*version=0\.0\.4\b/, `content-type ${ct}`);
        for (const name of ['volli_connections', 'volli_registered_users',
                            'process_resident_memory_bytes']) {
            const v = sampleValue(m, name);
            assert.ok(v !== undefined, `missing ${name}`);
            assert.ok(Number.isFinite(v) && v >= 0, `${name} = ${v}`);
        }
        assert.ok(sampleValue(m, 'process_resident_memory_bytes') > 1024 * 1024,
                  'resident memory should be a plausible byte count');
        assert.equal(m.types.volli_request_duration_seconds, 'histogram',
                     '# TYPE volli_request_duration_seconds histogram');
    });

    test('relays, errors, connections, registrations and request durations move the metrics',
         async () => {
        const before = await fetchMetrics(srv.port);
        const a = await connectAs(srv.port, uid('ma'));
        const b = await connectAs(srv.port, uid('mb'));
        const c = await connectAs(srv.port, uid('mc'));
        for (let i = 0; i < 3; i++) a.send({ type: 'offer', to: b.userId, offer: i });
        for (let i = 0; i < 2; i++) a.send({ type: 'answer', to: b.userId, answer: i });
        a.send({ type: 'ice-candidate', to: b.userId, candidate: 'c' });
        a.send({ type: 'bye', to: b.userId });
        for (let i = 0; i < 7; i++) await b.recv((x) => x.type !== 'presence');
        const nobody = uid('nobody');
        a.send({ type: 'offer', to: nobody, offer: 'x' });
        a.send({ type: 'offer', to: nobody, offer: 'y' });
        await a.expectError('peer_offline', { to: nobody });
        await a.expectError('peer_offline', { to: nobody });
        c.sendText('{{{');
        await c.expectError('bad_json');
        c.send({ type: 'frobnicate' });
        await c.expectError('unknown_type');
        for (let i = 0; i < 10; i++) {
            c.send({ type: 'discover', userId: a.userId });
            await c.recvType('discover');
        }

        const mid = await fetchMetrics(srv.port);
        const delta = (name, labels) => val(mid, name, labels) - val(before, name, labels);
        assert.equal(delta('volli_messages_relayed_total', { type: 'offer' }), 3);
        assert.equal(delta('volli_messages_relayed_total', { type: 'answer' }), 2);
        assert.equal(delta('volli_messages_relayed_total', { type: 'ice-candidate' }), 1);
        assert.equal(delta('volli_messages_relayed_total', { type: 'bye' }), 1);
        assert.equal(delta('volli_errors_total', { code: 'peer_offline' }), 2);
        assert.equal(delta('volli_errors_total', { code: 'bad_json' }), 1);
        assert.equal(delta('volli_errors_total', { code: 'unknown_type' }), 1);
        assert.equal(delta('volli_registered_users'), 3);
        assert.ok(delta('volli_connections') >= 3,
                  `volli_connections moved by ${delta('volli_connections')}, want >= 3`);
        assert.equal(delta('volli_request_duration_seconds_count', { type: 'discover' }), 10);
        assert.ok(delta('volli_request_duration_seconds_count', { type: 'register' }) >= 3);
        assert.ok(delta('volli_request_duration_seconds_count', { type: 'offer' }) >= 3);

        // Closing the connections brings volli_connections back down.
        const during = val(mid, 'volli_connections');
        for (const x of [a, b, c]) await x.close();
        const end = await metricsUntil((m) => val(m, 'volli_connections') <= during - 3);
        assert.ok(val(end, 'volli_connections') <= during - 3,
                  `volli_connections ${val(end, 'volli_connections')} after closing 3 of ` +
                  `${during}`);
    });

    test('the request duration histogram is well formed for every type label', async () => {
        const c = await connectAs(srv.port, uid('h'));
        c.send({ type: 'discover', userId: c.userId });
        await c.recvType('discover');
        await c.ping();
        await c.close();
        const m = await fetchMetrics(srv.port);
        const counts = findSamples(m, 'volli_request_duration_seconds_count');
        const types = counts.map((s) => s.labels.type);
        assert.ok(types.includes('discover') && types.includes('register'),
                  `types with a _count: ${types}`);
        for (const count of counts) {
            const type = count.labels.type;
            const buckets = findSamples(m, 'volli_request_duration_seconds_bucket', { type })
                .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le),
                               v: s.value }))
                .sort((x, y) => x.le - y.le);
            assert.ok(buckets.length >= 2, `${type}: too few buckets`);
            assert.equal(buckets.at(-1).le, Infinity, `${type}: no le="+Inf" bucket`);
            for (let i = 1; i < buckets.length; i++) {
                assert.ok(buckets[i].v >= buckets[i - 1].v, `${type}: buckets not cumulative`);
            }
            assert.equal(buckets.at(-1).v, count.value, `${type}: +Inf bucket != _count`);
            const sum = sampleValue(m, 'volli_request_duration_seconds_sum', { type });
            assert.ok(sum !== undefined && sum >= 0, `${type}: _sum = ${sum}`);
        }
    });

    test('any other path is 404', async () => {
        for (const p of ['/nope', '/metricsx', '/healthz/more', '/rtc/x', '/sdk/nope.js']) {
            const r = await httpGet(srv.port, p);
            assert.equal(r.status, 404, `${p} answered ${r.status}`);
        }
    });

    test('a non-WebSocket GET / serves the demo app, GET /rtc gets 426', async () => {
        const demo = await httpGet(srv.port, '/');
        assert.equal(demo.status, 200);
        assert.equal(demo.headers['content-type'], 'text/html; charset=utf-8');
        const rtc = await httpGet(srv.port, '/rtc');
        assert.equal(rtc.status, 426);
    });

    test('upgrade works on / and /rtc and is refused with 404 elsewhere', async () => {
        for (const p of ['/', '/rtc']) {
            const ws = await RawWs.connect(srv.port, { path: p });
            const hello = await ws.nextJson();
            assert.equal(hello.type, 'hello');
            ws.destroy();
        }
        for (const p of ['/other', '/rtc2', '/rtc/x']) {
            const key = crypto.randomBytes(16).toString('base64');
            const r = await rawHttp(srv.port, upgradeRequest(p, key));
            assert.equal(r.status, 404, `upgrade on ${p}: ${r.statusLine}`);
        }
        // The same refusal as a ws client sees it.
        const status = await withTimeout(new Promise((resolve) => {
            const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/other`);
            ws.on('unexpected-response', (req, res) => {
                resolve(res.statusCode);
                req.destroy();
            });
            ws.on('open', () => {
                resolve(101);
                ws.terminate();
            });
            ws.on('error', () => {});
        }), scaled(3000), 'ws upgrade to /other');
        assert.equal(status, 404);
    });

    test('HTTP traffic does not disturb open WebSockets', async () => {
        const c = await Client.connect(srv.port);
        for (let i = 0; i < 20; i++) await httpGet(srv.port, i % 2 ? '/metrics' : '/healthz');
        await c.ping();
        await c.close();
    });
});
