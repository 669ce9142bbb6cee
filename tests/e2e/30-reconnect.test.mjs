// e2e 30: the server restarts mid-session (SIGTERM, then a new process on the same port and
// data directory). Both pages reconnect by themselves (SDK auto-reconnect), register again,
// get their presence subscription back without asking, and a new call works.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, stopAll, tempDir } from '../integration/lib/server.mjs';
import { scaled, uid } from '../integration/lib/util.mjs';
import {
    REFUSED_WEBSOCKET, assertNoProblems, closeAll, freePort, launch, openHarness,
} from './lib/browser.mjs';

let browser;

before(async () => {
    browser = await launch();
});

after(async () => {
    await closeAll();
    await stopAll();
});

function countEvents(page, type) {
    return page.evaluate((ty) => window.t.events.filter((e) => e.type === ty).length, type);
}

test('server restart: both pages reconnect, resubscribe and call again', { timeout: scaled(90000) },
     async () => {
         const port = await freePort();
         const args = ['--host', '127.0.0.1', '--port', String(port), '--data-dir', tempDir(),
                       '--log-format', 'json', '--log-level', 'info'];
         let server = await startServer({ raw: true, args });
         assert.equal(server.port, port);

         const a = await openHarness(browser, port);
         const b = await openHarness(browser, port);
         const ida = uid('ra');
         const idb = uid('rb');
         await a.evaluate((id) => window.t.connect(id), ida);
         await b.evaluate((id) => window.t.connect(id), idb);
         await a.evaluate((id) => {
             window.seen = [];
             return window.t.client.subscribe(id, (p) => window.seen.push(p.online)).then(() => 0);
         }, idb);
         await a.waitForFunction(() => window.seen.length === 1);

         // A call is up before the restart.
         assert.deepEqual(await a.evaluate((id) => window.t.call(id, { data: true }), idb),
                          { ok: true });
         await b.waitForFunction((id) => !!window.t.dcs[id], ida);
         const firstPc = await b.evaluate((id) => window.t.pcs[id].volliCallId, ida);

         const stopped = await server.stop('SIGTERM');
         assert.deepEqual(stopped, { code: 0, signal: null }, server.tail());
         await a.waitForFunction(() => window.t.events.some((e) => e.type === 'disconnected'));
         await b.waitForFunction(() => window.t.events.some((e) => e.type === 'disconnected'));
         const drop = await a.evaluate(
             () => window.t.events.find((e) => e.type === 'disconnected'));
         // SIGTERM drains: the server asks its clients to move, and the SDK leaves at once.
         assert.match(drop.reason, /reconnect \(draining\)/,
                      `server shutdown should ask to reconnect: ${JSON.stringify(drop)}`);
         assert.equal(drop.reconnectIn, 0);

         server = await startServer({ raw: true, args });
         const t0 = Date.now();
         await a.waitForFunction(() => window.t.events.filter((e) => e.type === 'registered')
             .length === 2, null, { timeout: scaled(30000) });
         await b.waitForFunction(() => window.t.events.filter((e) => e.type === 'registered')
             .length === 2, null, { timeout: scaled(30000) });
         console.log(`both pages registered again ${Date.now() - t0} ms after the restart`);
         assert.equal(await countEvents(a, 'closed'), 0);
         assert.equal(await a.evaluate(() => window.t.client.registered), true);

         // The call made before is replaced by a new one through the new server process.
         assert.deepEqual(await a.evaluate((id) => window.t.call(id, { data: true }), idb),
                          { ok: true });
         await b.waitForFunction(([id, old]) => window.t.pcs[id].volliCallId !== old &&
                                 !!window.t.dcs[id] && window.t.dcs[id].readyState === 'open',
                                 [ida, firstPc]);
         await a.waitForFunction((id) => window.t.dcs[id] && window.t.dcs[id].readyState === 'open',
                                 idb);
         await a.evaluate(([id, text]) => window.t.send(id, text), [idb, 'after restart']);
         await b.waitForFunction(() => window.t.msgs.some((m) => m.data === 'after restart'));
         await b.evaluate(([id, text]) => window.t.send(id, text), [ida, 'back']);
         await a.waitForFunction(() => window.t.msgs.some((m) => m.data === 'back'));
         assert.equal(await b.evaluate(() => window.t.pcCounts().open), 1);

         // The presence subscription was restored on the new server: b leaving is seen.
         await b.evaluate(() => window.t.client.close());
         await a.waitForFunction(() => window.seen.at(-1) === false, null,
                                 { timeout: scaled(5000) });
         const tail = await a.evaluate(() => window.seen);
         assert.equal(tail[0], true);
         assert.equal(tail.at(-1), false);
         // While the server was down, Chromium itself logged each refused WebSocket as a
         // console error; that is expected here, nothing else is.
         assertNoProblems(a, 'page a', { allow: [REFUSED_WEBSOCKET] });
         assertNoProblems(b, 'page b', { allow: [REFUSED_WEBSOCKET] });
     });

test('a dead server first in the list: the client moves on to the next one',
     { timeout: scaled(60000) }, async () => {
         const server = await startServer();
         const dead = await freePort();
         const page = await openHarness(browser, server.port);
         const id = uid('hop');
         const servers = [`ws://127.0.0.1:${dead}/`, `ws://127.0.0.1:${server.port}/`];
         assert.equal(await page.evaluate(([u, s]) => window.t.connect(u, { servers: s }),
                                          [id, servers]), id);
         assert.equal(await page.evaluate(() => window.t.client.server), servers[1]);
         const events = await page.evaluate(() => window.t.events.map((e) => e.type));
         assert.deepEqual(events, ['disconnected', 'connected', 'registered']);
         const drop = await page.evaluate(() => window.t.events[0]);
         assert.equal(drop.server, servers[0]);
         assert.ok(drop.reconnectIn >= 0 && drop.reconnectIn < 200,
                   `first backoff is drawn from [0, 200) ms: ${drop.reconnectIn}`);
         // With every server dead, connect() gives up with "unreachable" after one pass.
         const allDead = [servers[0], servers[0].replace(/\/$/, '/rtc')];
         const code = await page.evaluate((s) => window.t.sdk.Volli.connect({
             userId: 'nobody', servers: s, persistKeys: false,
         }).then(() => 'registered', (e) => e.code), allDead);
         assert.equal(code, 'unreachable');
         assertNoProblems(page, 'page', { allow: [REFUSED_WEBSOCKET] });
     });
