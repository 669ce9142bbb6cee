// Tier 78: a bounded soak under mixed load (connect, register, subscribe, relay, discover,
// disconnect churn). Memory must stay flat after warm-up (release build) and file descriptors
// must come back to where they started; in the ASan build, LeakSanitizer checks for leaks at
// exit (stopAll requires exit 0). SOAK_SECONDS sets the length (default 20; `make soak` runs
// 600 on each build).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { Client, closeAllClients, makeIdentity, signRegister } from './lib/client.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { SANITIZED, sleep, uid } from './lib/util.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS || 20);
const WORKERS = 24;

after(async () => {
    closeAllClients();
    await stopAll();
});

function rssKb(pid) {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]);
}

function fds(pid) {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
}

async function registerAs(c, identity) {
    c.send({ type: 'register', userId: identity.userId, publicKey: identity.publicKey,
             signature: signRegister(identity, c.hello.nonce) });
    const m = await c.recv((x) => x.type === 'registered' || x.type === 'error');
    assert.equal(m.type, 'registered', JSON.stringify(m));
}

test(`soak: ${SECONDS} s of churn keeps memory flat and releases every descriptor`,
     { timeout: (SECONDS + 60) * 1000 * (SANITIZED ? 3 : 1) }, async () => {
         const srv = await startServer();
         await sleep(200);
         const fdBase = fds(srv.pid);
         // A fixed population of ids, so the directory and the store reach a steady state.
         const people = Array.from({ length: WORKERS * 4 }, () => makeIdentity(uid('soak')));
         const deadline = Date.now() + SECONDS * 1000;
         const warm = Date.now() + SECONDS * 250;
         const samples = [];
         let warmRss = 0;
         let cycles = 0;
         let relayed = 0;
         const sampler = (async () => {
             while (Date.now() < deadline) {
                 const r = rssKb(srv.pid);
                 samples.push(r);
                 if (!warmRss && Date.now() >= warm) warmRss = r;
                 await sleep(500);
             }
         })();
         const worker = async (w) => {
             while (Date.now() < deadline) {
                 const me = people[(w * 4 + (cycles % 4)) % people.length];
                 const peer = people[(w * 4 + 1 + (cycles % 3)) % people.length];
                 const a = await Client.connect(srv.port);
                 await registerAs(a, me);
                 a.send({ type: 'subscribe', id: 's', userIds: [peer.userId, 'nobody-here'] });
                 a.send({ type: 'discover', id: 'd', userIds: [peer.userId, me.userId] });
                 for (let k = 0; k < 5; k++) {
                     a.send({ type: 'offer', to: me.userId, offer: { sdp: `v=0 ${k}`, k } });
                 }
                 for (let k = 0; k < 5; k++) {
                     await a.recv((m) => m.type === 'offer');
                     relayed += 1;
                 }
                 await a.recv((m) => m.type === 'discover');
                 if (cycles % 2) a.terminate();
                 else await a.close();
                 cycles += 1;
             }
         };
         await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
         await sampler;
         closeAllClients();
         await sleep(500);
         const endRss = rssKb(srv.pid);
         const fdEnd = fds(srv.pid);
         console.log(`soak ${SECONDS}s: ${cycles} sessions, ${relayed} relays; RSS KiB warm ` +
                     `${warmRss} end ${endRss} max ${Math.max(...samples)}; fds ${fdBase} -> ${fdEnd}`);
         assert.ok(cycles > WORKERS, 'the load ran');
         assert.equal(fdEnd, fdBase, 'every connection released its descriptor');
         // Flat: after warm-up, growth stays within a quarter plus allocator slack. Under ASan
         // freed memory sits in its quarantine (up to 256 MiB), so there LeakSanitizer at exit
         // is the check instead.
         if (!SANITIZED) {
             assert.ok(endRss <= warmRss * 1.25 + 4096,
                       `RSS grew from ${warmRss} to ${endRss} KiB`);
         }
     });
