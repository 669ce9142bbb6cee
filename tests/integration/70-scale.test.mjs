// Tier 70: 1,000 concurrent registered clients, and discover latency (p50/p99 of 500
// sequential discovers, asserted against a generous bound only).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, closeAllClients, makeIdentity } from './lib/client.mjs';
import { fetchMetrics, sampleValue } from './lib/http.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { mapLimit, percentile, SANITIZED, scaled, uid } from './lib/util.mjs';

const N = 1000;
let srv;
let clients = [];
before(async () => {
    srv = await startServer();
});
after(async () => {
    closeAllClients();
    await stopAll();
});

describe('scale', () => {
    test(`${N} concurrent clients all register`, { timeout: scaled(120000) }, async () => {
        const t0 = Date.now();
        const idents = Array.from({ length: N }, (_, i) => makeIdentity(uid(`s${i}`)));
        const tKeys = Date.now();
        clients = await mapLimit(idents, 50, async (ident) => {
            const c = await Client.connect(srv.port, { timeout: scaled(15000) });
            await c.registerOk(ident, { ms: scaled(15000) });
            return c;
        });
        const tReg = Date.now();
        console.log(`keys ${tKeys - t0} ms; ${N} connects + registers ${tReg - tKeys} ms`);
        assert.equal(clients.length, N);
        assert.ok(clients.every((c) => c.isOpen));

        // Everyone is online, as seen by batch discover (100 at a time).
        const asker = clients[0];
        for (let i = 0; i < N; i += 100) {
            const batch = clients.slice(i, i + 100);
            asker.send({ type: 'discover', userIds: batch.map((c) => c.userId) });
            const m = await asker.recvType('discover', scaled(5000));
            assert.equal(m.users.length, batch.length);
            for (const [j, u] of m.users.entries()) {
                assert.deepEqual(u, { userId: batch[j].userId, online: true,
                                      publicKey: batch[j].identity.publicKey });
            }
        }

        const metrics = await fetchMetrics(srv.port);
        assert.ok(sampleValue(metrics, 'volli_connections') >= N,
                  `volli_connections = ${sampleValue(metrics, 'volli_connections')}`);
        assert.ok(sampleValue(metrics, 'volli_registered_users') >= N,
                  `volli_registered_users = ${sampleValue(metrics, 'volli_registered_users')}`);
        const rss = sampleValue(metrics, 'process_resident_memory_bytes') / 1048576;
        console.log(`server RSS with ${N} clients: ${rss.toFixed(1)} MiB`);
    });

    test('a sample of the 1,000 relays to each other', { timeout: scaled(60000) }, async () => {
        assert.equal(clients.length, N, 'needs the previous test');
        // 200 relays between pseudo-random pairs, all in flight at once.
        const pairs = [];
        for (let k = 0; k < 200; k++) {
            const from = clients[(k * 7919) % N];
            const to = clients[(k * 104729 + 13) % N];
            pairs.push([from, to, k]);
        }
        const expected = new Map();
        for (const [from, to, k] of pairs) {
            from.send({ type: 'offer', to: to.userId, offer: { k } });
            if (!expected.has(to)) expected.set(to, []);
            expected.get(to).push({ from: from.userId, k });
        }
        for (const [to, list] of expected) {
            const got = [];
            for (let i = 0; i < list.length; i++) {
                const m = await to.recvType('offer', scaled(10000));
                got.push({ from: m.from, k: m.offer.k });
            }
            const key = (x) => `${x.k}`;
            assert.deepEqual(got.map(key).sort(), list.map(key).sort());
            for (const g of got) {
                assert.equal(g.from, pairs[g.k][0].userId);
            }
        }
    });

    test('discover latency over 500 sequential requests', { timeout: scaled(60000) },
         async () => {
        assert.equal(clients.length, N, 'needs the first test');
        const asker = clients[1];
        const times = [];
        for (let i = 0; i < 500; i++) {
            const target = clients[(i * 37) % N];
            const t0 = process.hrtime.bigint();
            asker.send({ type: 'discover', userId: target.userId });
            const m = await asker.recvType('discover', scaled(5000));
            times.push(Number(process.hrtime.bigint() - t0) / 1e6);
            assert.equal(m.userId, target.userId);
            assert.equal(m.online, true);
        }
        const p50 = percentile(times, 50);
        const p99 = percentile(times, 99);
        console.log(`discover latency with ${N} clients: p50 ${p50.toFixed(3)} ms, ` +
                    `p99 ${p99.toFixed(3)} ms, max ${Math.max(...times).toFixed(3)} ms`);
        const bound = SANITIZED ? 200 : 50;
        assert.ok(p99 < bound, `p99 ${p99.toFixed(1)} ms >= ${bound} ms`);
    });

    test('closing all 1,000 leaves the server healthy', { timeout: scaled(60000) }, async () => {
        await mapLimit(clients, 100, (c) => c.close(scaled(10000)));
        const probe = await Client.connect(srv.port);
        await probe.ping();
        const deadline = Date.now() + scaled(5000);
        let conns;
        do {
            conns = sampleValue(await fetchMetrics(srv.port), 'volli_connections');
        } while (conns > 1 && Date.now() < deadline);
        assert.ok(conns <= 1, `volli_connections still ${conns} after closing everyone`);
        await probe.close();
    });
});
