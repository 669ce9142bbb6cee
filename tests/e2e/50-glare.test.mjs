// e2e 50: glare. Both pages call each other at the same moment; exactly one call survives
// (the offer of the smaller user id, see docs/sdk.md), it connects, both call() promises
// resolve with that one connection, and data crosses it. Repeated a few times, with each
// side in turn holding the smaller id, because the interleaving differs from run to run.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, stopAll } from '../integration/lib/server.mjs';
import { scaled, uid } from '../integration/lib/util.mjs';
import { assertNoProblems, closeAll, launch, openHarness } from './lib/browser.mjs';

let server;
let browser;

before(async () => {
    server = await startServer();
    browser = await launch();
});

after(async () => {
    await closeAll();
    await stopAll();
});

async function glareRound(round, { audio, forced }) {
    const a = await openHarness(browser, server.port);
    const b = await openHarness(browser, server.port);
    if (forced) {
        await a.evaluate(() => {
            window.t.holdOffers = true;
        });
        await b.evaluate(() => {
            window.t.holdOffers = true;
        });
    }
    // The prefixes decide who holds the smaller id: "g0-" < "g1-".
    const small = uid('g0');
    const big = uid('g1');
    const [ida, idb] = round % 2 === 0 ? [small, big] : [big, small];
    await a.evaluate((id) => window.t.connect(id), ida);
    await b.evaluate((id) => window.t.connect(id), idb);
    const opts = { data: true, audio };

    // Start both calls in the same turn of each page, as close together as we can.
    const [ra, rb] = await Promise.all([
        a.evaluate(([id, o]) => window.t.call(id, o), [idb, opts]),
        b.evaluate(([id, o]) => window.t.call(id, o), [ida, opts]),
    ]);
    assert.deepEqual(ra, { ok: true }, `round ${round}: a's call failed`);
    assert.deepEqual(rb, { ok: true }, `round ${round}: b's call failed`);

    await a.waitForFunction((id) => window.t.dcs[id]?.readyState === 'open', idb);
    await b.waitForFunction((id) => window.t.dcs[id]?.readyState === 'open', ida);
    await a.waitForFunction((id) => window.t.pcs[id].connectionState === 'connected', idb);
    await b.waitForFunction((id) => window.t.pcs[id].connectionState === 'connected', ida);

    // One call: the same call id on both sides, and the winner's offer is the one that stood.
    const callA = await a.evaluate((id) => ({ id: window.t.pcs[id].volliCallId,
                                              role: window.t.pcs[id].volliRole }), idb);
    const callB = await b.evaluate((id) => ({ id: window.t.pcs[id].volliCallId,
                                              role: window.t.pcs[id].volliRole }), ida);
    assert.equal(callA.id, callB.id, `round ${round}: two different calls survived`);
    const countsA = await a.evaluate(() => window.t.pcCounts());
    const countsB = await b.evaluate(() => window.t.pcCounts());
    const activeA = await a.evaluate(() => window.t.client.activeCalls.length);
    const activeB = await b.evaluate(() => window.t.client.activeCalls.length);
    assert.deepEqual([activeA, activeB], [1, 1]);
    for (const c of [countsA, countsB]) {
        assert.equal(c.open, 1, `round ${round}: ${JSON.stringify(c)}`);
        assert.equal(c.connected, 1, `round ${round}: ${JSON.stringify(c)}`);
        assert.ok(c.made <= 2, `round ${round}: ${JSON.stringify(c)}`);
    }
    if (forced) {
        // Real glare: the smaller id's offer stood; the winner made one connection only.
        const aWins = ida < idb;
        assert.deepEqual([callA.role, callB.role],
                         aWins ? ['caller', 'callee'] : ['callee', 'caller'], `round ${round}`);
        const [winner, loser] = aWins ? [countsA, countsB] : [countsB, countsA];
        assert.deepEqual(winner, { made: 1, open: 1, connected: 1 }, `round ${round}: winner`);
        // Both offers really crossed (each page saw the other's only after its own had gone
        // out), so the loser had made, and then dropped, a connection for its own offer.
        assert.equal(loser.made, 2, `round ${round}: loser ${JSON.stringify(loser)}`);
        // Nobody was asked to pick up: calling each other is consent on both sides.
        assert.deepEqual(await a.evaluate(() => window.t.incoming), []);
        assert.deepEqual(await b.evaluate(() => window.t.incoming), []);
    }

    await a.evaluate(([id, text]) => window.t.send(id, text), [idb, `ping ${round}`]);
    await b.waitForFunction((text) => window.t.msgs.some((m) => m.data === text), `ping ${round}`);
    await b.evaluate(([id, text]) => window.t.send(id, text), [ida, `pong ${round}`]);
    await a.waitForFunction((text) => window.t.msgs.some((m) => m.data === text), `pong ${round}`);
    assert.deepEqual(await a.evaluate(() => window.t.callErrors), []);
    assert.deepEqual(await b.evaluate(() => window.t.callErrors), []);
    assertNoProblems(a, `round ${round} page a`);
    assertNoProblems(b, `round ${round} page b`);
    await Promise.all([a.context().close(), b.context().close()]);
}

// Rounds 1-4 force the offers to cross; 5-6 let the two calls race as they come.
for (let round = 0; round < 6; round++) {
    const audio = round === 2 || round === 3;
    const forced = round < 4;
    test(`glare round ${round + 1}: page ${round % 2 === 0 ? 'a' : 'b'} holds the smaller id` +
         `${audio ? ', with audio' : ''}${forced ? ', offers crossing' : ', racing'}`,
         { timeout: scaled(60000) }, () => glareRound(round, { audio, forced }));
}
