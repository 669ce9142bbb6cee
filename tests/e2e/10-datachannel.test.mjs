// e2e 10: two Chromium pages register through the browser SDK, discover each other,
// open a WebRTC data channel signaled through volli-signal, and a message crosses both ways.
// Also: presence subscriptions, peer_offline, and a declined call, as the SDK reports them.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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

describe('data channel', () => {
    test('register, discover, data channel, a message each way', { timeout: scaled(60000) },
         async () => {
             const a = await openHarness(browser, server.port);
             const b = await openHarness(browser, server.port);
             const ida = uid('alice');
             const idb = uid('bob');
             assert.equal(await a.evaluate((id) => window.t.connect(id), ida), ida);
             assert.equal(await b.evaluate((id) => window.t.connect(id), idb), idb);

             // Each sees the other online, with the key it registered.
             const seenByA = await a.evaluate((id) => window.t.client.discover(id), idb);
             const keyB = await b.evaluate(() => window.t.client.publicKey);
             assert.deepEqual(seenByA, { userId: idb, online: true, publicKey: keyB });
             const batch = await b.evaluate((ids) => window.t.client.discover(ids),
                                            [ida, 'Nobody-Here-' + process.pid]);
             assert.equal(batch.length, 2);
             assert.equal(batch[0].userId, ida);
             assert.equal(batch[0].online, true);
             assert.equal(batch[1].online, false);
             assert.equal(batch[1].publicKey, null);

             const r = await a.evaluate((id) => window.t.call(id, { data: true }), idb);
             assert.deepEqual(r, { ok: true });
             await a.waitForFunction((id) => !!window.t.dcs[id], idb);
             await b.waitForFunction((id) => !!window.t.dcs[id], ida);
             const labels = await Promise.all([
                 a.evaluate((id) => window.t.dcs[id].label, idb),
                 b.evaluate((id) => window.t.dcs[id].label, ida),
             ]);
             assert.deepEqual(labels, ['volli', 'volli']);

             // Trickle ICE both ways: each side learned the other's host candidates through
             // the server (the caller's reach the callee before it has even accepted, so they
             // must have been queued); a side that got none would only know "prflx" ones.
             assert.ok((await b.evaluate((id) => window.t.remoteCandidateTypes(id), ida))
                 .includes('host'), 'the callee never applied the caller\'s candidates');
             assert.ok((await a.evaluate((id) => window.t.remoteCandidateTypes(id), idb))
                 .includes('host'), 'the caller never applied the callee\'s candidates');

             await a.evaluate(([id, text]) => window.t.send(id, text), [idb, 'hello from a']);
             await b.evaluate(([id, text]) => window.t.send(id, text), [ida, 'hello from b']);
             await b.waitForFunction(() => window.t.msgs.length >= 1);
             await a.waitForFunction(() => window.t.msgs.length >= 1);
             assert.deepEqual(await b.evaluate(() => window.t.msgs),
                              [{ from: ida, data: 'hello from a' }]);
             assert.deepEqual(await a.evaluate(() => window.t.msgs),
                              [{ from: idb, data: 'hello from b' }]);

             // Hang up from b: a learns it through bye and both connections close.
             await b.evaluate((id) => window.t.client.hangup(id), ida);
             await a.waitForFunction((id) => window.t.events.some(
                 (e) => e.type === 'callended' && e.peer === id && e.remote), idb);
             assert.equal(await a.evaluate((id) => window.t.pcs[id].signalingState, idb), 'closed');
             assert.equal(await b.evaluate((id) => window.t.pcs[id].signalingState, ida), 'closed');
             assertNoProblems(a, 'page a');
             assertNoProblems(b, 'page b');
             await Promise.all([a.context().close(), b.context().close()]);
         });

    test('presence, peer_offline and a declined call carry their codes', { timeout: scaled(60000) },
         async () => {
             const a = await openHarness(browser, server.port);
             const ida = uid('carol');
             const idb = uid('dave');
             await a.evaluate((id) => window.t.connect(id), ida);
             await a.evaluate((id) => {
                 window.seen = [];
                 return window.t.client.subscribe([id], (p) => window.seen.push(p))
                     .then((unsub) => {
                         window.unsub = unsub;
                     });
             }, idb);
             await a.waitForFunction(() => window.seen.length === 1);
             assert.deepEqual(await a.evaluate(() => window.seen),
                              [{ userId: idb, online: false }]);

             const offline = await a.evaluate((id) => window.t.call(id, { data: true }), idb);
             assert.equal(offline.ok, false);
             assert.equal(offline.code, 'peer_offline');

             const b = await openHarness(browser, server.port);
             await b.evaluate((id) => {
                 window.t.autoAccept = false;
                 window.t.client = null;
                 return window.t.connect(id);
             }, idb);
             await a.waitForFunction(() => window.seen.length === 2, null,
                                     { timeout: scaled(3000) });
             assert.deepEqual((await a.evaluate(() => window.seen))[1],
                              { userId: idb, online: true });

             // b declines: a's call() rejects with "rejected" and b's reason.
             await b.evaluate(() => {
                 window.t.client.onIncomingCall = (inc) => inc.reject('busy');
             });
             const declined = await a.evaluate((id) => window.t.client.call(id, { data: true })
                 .then(() => ({ ok: true }), (e) => ({ code: e.code, reason: e.reason })), idb);
             assert.deepEqual(declined, { code: 'rejected', reason: 'busy' });

             // After unsubscribing, b going away is no longer reported.
             await a.evaluate(() => window.unsub());
             await a.evaluate(() => window.t.client.ping());
             await b.context().close();
             await new Promise((r) => setTimeout(r, scaled(1500)));
             assert.equal(await a.evaluate(() => window.seen.length), 2);
             assertNoProblems(a, 'page a');
             await a.context().close();
         });

    test('connect() rejects with the wire code; a replaced session stops for good',
         { timeout: scaled(60000) }, async () => {
             const a = await openHarness(browser, server.port);
             const b = await openHarness(browser, server.port);
             const id = uid('owner');
             await a.evaluate((u) => window.t.connect(u), id);

             // Another browser profile has another key: the id is bound to a's key.
             const mismatch = await b.evaluate((u) => window.t.sdk.Volli.connect({ userId: u })
                 .then(() => 'registered', (e) => e.code), id);
             assert.equal(mismatch, 'key_mismatch');
             const invalid = await b.evaluate(() => window.t.sdk.Volli.connect({ userId: 'no way' })
                 .then(() => 'registered', (e) => e.code));
             assert.equal(invalid, 'invalid_user_id');

             // The same key in a second tab of the same profile replaces the first session,
             // which then stays closed instead of fighting back.
             const tab2 = await a.context().newPage();
             tab2.problems = [];
             tab2.on('console', (m) => m.type() === 'error' && tab2.problems.push(m.text()));
             await tab2.goto(a.url());
             await tab2.waitForFunction(() => window.harnessReady === true);
             assert.equal(await tab2.evaluate((u) => window.t.connect(u), id), id);
             await a.waitForFunction(() => window.t.events.some((e) => e.type === 'closed'));
             const codes = await a.evaluate(() => window.t.events.filter((e) => e.type === 'error')
                 .map((e) => e.code));
             assert.deepEqual(codes, ['replaced']);
             await new Promise((r) => setTimeout(r, 1000));
             const registrations = await a.evaluate(
                 () => window.t.events.filter((e) => e.type === 'registered').length);
             assert.equal(registrations, 1, 'the replaced session must not register again');
             assert.equal(await tab2.evaluate(() => window.t.client.registered), true);
             assert.equal(await tab2.evaluate(() => window.t.events.filter((e) => e.type ===
                 'disconnected').length), 0);
             assertNoProblems(a, 'page a');
             assertNoProblems(b, 'page b');
             assert.deepEqual(tab2.problems, []);
             await Promise.all([a.context().close(), b.context().close()]);
         });
});
