// e2e 20: an audio/video call between two Chromium pages using the fake camera and
// microphone; the callee really decodes the caller's video (inbound-rtp framesDecoded grows
// over a second) and the caller decodes the callee's.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, stopAll } from '../integration/lib/server.mjs';
import { scaled, sleep, uid } from '../integration/lib/util.mjs';
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

test('video call: the callee decodes frames, and so does the caller', { timeout: scaled(60000) },
     async () => {
         const a = await openHarness(browser, server.port);
         const b = await openHarness(browser, server.port);
         const ida = uid('vcaller');
         const idb = uid('vcallee');
         await a.evaluate((id) => window.t.connect(id), ida);
         await b.evaluate((id) => window.t.connect(id), idb);

         // The callee answers with the kinds offered (accept() without options).
         const r = await a.evaluate((id) => window.t.call(id, { audio: true, video: true }), idb);
         assert.deepEqual(r, { ok: true });
         await b.waitForFunction((id) => !!window.t.pcs[id], ida);
         const offered = await b.evaluate(() => window.t.incoming.length);
         assert.equal(offered, 1);
         await a.waitForFunction((id) => window.t.pcs[id].connectionState === 'connected', idb);
         await b.waitForFunction((id) => window.t.pcs[id].connectionState === 'connected', ida);

         const kinds = await b.evaluate((id) => window.t.pcs[id].volliRemoteStream.getTracks()
             .map((tr) => tr.kind).sort(), ida);
         assert.deepEqual(kinds, ['audio', 'video']);
         const local = await a.evaluate((id) => window.t.pcs[id].volliLocalStream.getTracks()
             .map((tr) => `${tr.kind}:${tr.readyState}`).sort(), idb);
         assert.deepEqual(local, ['audio:live', 'video:live']);

         // Frames may take a moment to start; then they must keep coming.
         await b.waitForFunction(async (id) => (await window.t.inboundVideo(id)).frames > 0, ida,
                                 { timeout: scaled(15000), polling: 200 });
         const first = await b.evaluate((id) => window.t.inboundVideo(id), ida);
         await sleep(1000);
         const second = await b.evaluate((id) => window.t.inboundVideo(id), ida);
         console.log(`callee framesDecoded ${first.frames} -> ${second.frames} in 1 s, ` +
                     `bytes ${first.bytes} -> ${second.bytes}`);
         assert.ok(second.frames > first.frames,
                   `framesDecoded did not grow: ${first.frames} -> ${second.frames}`);
         assert.ok(second.bytes > first.bytes);

         await a.waitForFunction(async (id) => (await window.t.inboundVideo(id)).frames > 0, idb,
                                 { timeout: scaled(15000), polling: 200 });

         // Hanging up stops the camera the SDK opened.
         await a.evaluate((id) => window.t.client.hangup(id), idb);
         const after = await a.evaluate((id) => window.t.pcs[id].volliLocalStream.getTracks()
             .map((tr) => tr.readyState), idb);
         assert.deepEqual(after, ['ended', 'ended']);
         await b.waitForFunction((id) => window.t.pcs[id].signalingState === 'closed', ida);
         assertNoProblems(a, 'caller page');
         assertNoProblems(b, 'callee page');
     });
