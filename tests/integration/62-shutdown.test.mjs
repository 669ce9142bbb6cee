// Tier 62: graceful shutdown (close 1001, exit 0), restart persistence of key bindings, and
// durability of a binding across kill -9 right after "registered".

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import {
    Client, closeAllClients, connectAs, makeIdentity, signRegister,
} from './lib/client.mjs';
import { startServer, stopAll, tempDir } from './lib/server.mjs';
import { mapLimit, scaled, uid } from './lib/util.mjs';

after(async () => {
    closeAllClients();
    await stopAll();
});

/** On the given server: ident's binding holds (other key refused, own key accepted). */
async function assertBound(port, ident) {
    const intruder = await Client.connect(port);
    const m = await intruder.register(makeIdentity(ident.userId));
    assert.equal(m.code, 'key_mismatch', `binding of ${ident.userId} lost: ${JSON.stringify(m)}`);
    await intruder.close();
    const owner = await Client.connect(port);
    await owner.registerOk(ident);
    await owner.close();
}

describe('shutdown', () => {
    for (const signal of ['SIGTERM', 'SIGINT']) {
        test(`${signal}: every open WebSocket gets close 1001, then exit 0`, async () => {
            const s = await startServer();
            const reg = await connectAs(s.port, uid('sd'));
            const other = await connectAs(s.port, uid('sd'));
            reg.send({ type: 'subscribe', userIds: [other.userId] });
            await reg.recvType('presence');
            const anon = await Client.connect(s.port);
            const rtc = await Client.connect(s.port, { path: '/rtc' });
            const clients = [reg, other, anon, rtc];
            const exit = s.stop(signal);
            const closes = await Promise.all(clients.map((c) => c.waitClose(scaled(5000))));
            for (const [i, c] of closes.entries()) {
                assert.equal(c.code, 1001, `client ${i} closed with ${c.code}`);
            }
            const info = await exit;
            assert.deepEqual(info, { code: 0, signal: null }, s.tail());
        });
    }

    test('SIGTERM with no connections exits 0 promptly', async () => {
        const s = await startServer();
        const t0 = Date.now();
        const info = await s.stop('SIGTERM', scaled(5000));
        assert.equal(info.code, 0, s.tail());
        console.log(`idle shutdown took ${Date.now() - t0} ms`);
    });
});

describe('persistence', () => {
    test('bindings survive a restart; discover shows the key while offline', async () => {
        const dir = tempDir();
        const s1 = await startServer({ dataDir: dir });
        const idents = [makeIdentity(uid('keep')), makeIdentity(uid('keep'))];
        for (const ident of idents) {
            const c = await Client.connect(s1.port);
            await c.registerOk(ident);
            await c.close();
        }
        assert.equal((await s1.stop()).code, 0, s1.tail());

        const s2 = await startServer({ dataDir: dir });
        const asker = await connectAs(s2.port, uid('ask'));
        asker.send({ type: 'discover', userIds: idents.map((i) => i.userId) });
        const d = await asker.recvType('discover');
        assert.deepEqual(d.users, idents.map((i) => ({ userId: i.userId, online: false,
                                                       publicKey: i.publicKey })));
        for (const ident of idents) await assertBound(s2.port, ident);
        await asker.close();
        await s2.stop();
    });

    test('kill -9 right after "registered" loses no binding', async () => {
        const dir = tempDir();
        const confirmed = [];
        for (let round = 0; round < 3; round++) {
            const s = await startServer({ dataDir: dir });
            const ident = makeIdentity(uid(`k9r${round}`));
            const c = await Client.connect(s.port);
            // Kill from inside the frame handler: nothing else runs in between.
            c.ws.on('message', (data) => {
                if (JSON.parse(data.toString()).type === 'registered') s.proc.kill('SIGKILL');
            });
            await c.registerOk(ident);
            confirmed.push(ident);
            const info = await s.exited;
            assert.equal(info.signal, 'SIGKILL');
        }
        const s = await startServer({ dataDir: dir });
        for (const ident of confirmed) await assertBound(s.port, ident);
        await s.stop();
    });

    test('kill -9 in the middle of many registers keeps every acknowledged one', async () => {
        const dir = tempDir();
        const s = await startServer({ dataDir: dir });
        const n = 40;
        const clients = await mapLimit([...Array(n).keys()], 10, () => Client.connect(s.port));
        const idents = clients.map(() => makeIdentity(uid('burst')));
        const acked = [];
        let killed = false;
        for (const [i, c] of clients.entries()) {
            c.ws.on('message', (data) => {
                const m = JSON.parse(data.toString());
                if (m.type !== 'registered') return;
                acked.push(idents[i]);
                if (acked.length === n / 2 && !killed) {
                    killed = true;
                    s.proc.kill('SIGKILL');
                }
            });
        }
        for (const [i, c] of clients.entries()) c.send(registerMsg(c, idents[i]));
        await s.exited;
        await Promise.all(clients.map((c) => c.waitClose(scaled(5000)).catch(() => c.terminate())));
        assert.ok(acked.length >= n / 2, `only ${acked.length} registers acknowledged`);
        console.log(`${acked.length} of ${n} registers acknowledged before kill -9`);

        const s2 = await startServer({ dataDir: dir });
        for (const ident of acked) await assertBound(s2.port, ident);
        await s2.stop();
    });
});

function registerMsg(c, ident) {
    return { type: 'register', userId: ident.userId, publicKey: ident.publicKey,
             signature: signRegister(ident, c.hello.nonce) };
}
