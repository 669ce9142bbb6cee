// Tier 64: keep-alive. The server pings every --ping-interval; a peer that misses two pongs is
// dropped and shows offline to its subscribers. Peers that answer stay.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, closeAllClients, connectAs, makeIdentity } from './lib/client.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { scaled, sleep, uid } from './lib/util.mjs';

const INTERVAL = 0.2;
let srv;
before(async () => {
    srv = await startServer({ args: ['--ping-interval', String(INTERVAL)] });
});
after(async () => {
    closeAllClients();
    await stopAll();
});

describe('keep-alive', () => {
    test('a peer that does not answer pings is dropped and shows offline', async () => {
        const watcher = await connectAs(srv.port, uid('kw'));
        const mute = await Client.connect(srv.port, { autoPong: false });
        const t0 = Date.now();
        await mute.registerOk(makeIdentity(uid('mute')));
        watcher.send({ type: 'subscribe', userIds: [mute.userId] });
        assert.equal((await watcher.recvType('presence')).online, true);

        // Two missed pings take 2-3 intervals; allow generous slack on a loaded machine.
        const closed = await mute.waitClose(scaled(4000));
        const dt = Date.now() - t0;
        console.log(`unresponsive peer dropped after ${dt} ms, ${mute.pings} pings, ` +
                    `close code ${closed.code}`);
        assert.ok(mute.pings >= 2, `dropped after only ${mute.pings} pings`);
        assert.ok(dt >= 1.5 * INTERVAL * 1000, `dropped too early (${dt} ms)`);
        const off = await watcher.recv((m) => m.type === 'presence', scaled(1000),
                                       'offline after the drop');
        assert.deepEqual(off, { type: 'presence', userId: mute.userId, online: false });
        await watcher.close();
    });

    test('an unregistered peer that does not answer is dropped too', async () => {
        const mute = await Client.connect(srv.port, { autoPong: false });
        await mute.waitClose(scaled(4000));
        assert.ok(mute.pings >= 2);
    });

    test('peers that answer pings stay connected and online', async () => {
        const alive = await connectAs(srv.port, uid('alive'));
        const watcher = await connectAs(srv.port, uid('kw'));
        watcher.send({ type: 'subscribe', userIds: [alive.userId] });
        assert.equal((await watcher.recvType('presence')).online, true);
        await sleep(scaled(1500));
        assert.ok(alive.pings >= 3, `only ${alive.pings} pings in 1.5 s at ${INTERVAL} s`);
        assert.ok(alive.isOpen && watcher.isOpen, 'an answering peer was dropped');
        await watcher.expectNone(0, (m) => m.type === 'presence', 'no presence change');
        await alive.ping();
        watcher.send({ type: 'offer', to: alive.userId, offer: 'still' });
        assert.equal((await alive.recvType('offer')).offer, 'still');
        await alive.close();
        await watcher.close();
    });

    test('the default interval does not ping within the first second', async () => {
        const s = await startServer();
        const c = await Client.connect(s.port);
        await sleep(1000);
        assert.equal(c.pings, 0);
        await c.close();
        await s.stop();
    });
});
