// Tier 12: requests sent back to back without waiting are answered in order, even while a
// register waits for its durable key binding (the connection holds later frames meanwhile).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, closeAllClients, makeIdentity, signRegister } from './lib/client.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { uid } from './lib/util.mjs';

let srv;
before(async () => {
    srv = await startServer();
});
after(async () => {
    closeAllClients();
    await stopAll();
});

test('register, subscribe, discover, ping and a relay sent in one burst are answered in order',
     async () => {
         const peer = await Client.connect(srv.port);
         const peerId = makeIdentity(uid('peer'));
         await peer.registerOk(peerId);

         const c = await Client.connect(srv.port);
         const me = makeIdentity(uid('burst'));
         const burst = [
             { type: 'register', id: 'b1', userId: me.userId, publicKey: me.publicKey,
               signature: signRegister(me, c.hello.nonce) },
             { type: 'subscribe', id: 'b2', userIds: [peerId.userId] },
             { type: 'discover', id: 'b3', userId: peerId.userId },
             { type: 'offer', id: 'b4', to: peerId.userId, offer: { sdp: 'burst' } },
             { type: 'ping', id: 'b5' },
         ];
         // One write: the server reads the whole burst in one wake-up.
         c.ws._socket.cork();
         for (const m of burst) c.send(m);
         c.ws._socket.uncork();

         const got = [];
         for (let i = 0; i < 4; i++) got.push(await c.recv());
         assert.deepEqual(got.map((m) => [m.type, m.id]),
                          [['registered', 'b1'], ['presence', 'b2'], ['discover', 'b3'],
                           ['pong', 'b5']]);
         assert.equal(got[1].online, true);
         assert.equal(got[2].online, true);
         const relayed = await peer.recvType('offer');
         assert.equal(relayed.from, me.userId.toLowerCase());
         assert.deepEqual(relayed.offer, { sdp: 'burst' });
     });

test('many registers in flight at once on different connections all complete', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => Client.connect(srv.port)));
    const ids = clients.map(() => makeIdentity(uid('many')));
    clients.forEach((c, i) => c.send({ type: 'register', id: `m${i}`, userId: ids[i].userId,
                                       publicKey: ids[i].publicKey,
                                       signature: signRegister(ids[i], c.hello.nonce) }));
    const replies = await Promise.all(clients.map((c) => c.recv()));
    replies.forEach((m, i) => {
        assert.equal(m.type, 'registered', JSON.stringify(m));
        assert.equal(m.id, `m${i}`);
    });
    for (const c of clients) c.terminate();
});
