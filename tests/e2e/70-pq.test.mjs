// e2e 70: the post-quantum signaling session in the browser SDK (docs/sdk.md, "Post-quantum
// session"). Two Chromium pages connect with `pq` on (one with the browser's own ML-KEM if it
// has one, one forced onto @noble/post-quantum loaded through the import map and its scopes),
// register inside the session and open a WebRTC data channel. Playwright sees every WebSocket
// frame: after hello and the handshake only `enc` frames cross, both ways; the server's
// metrics and its API port's session stats agree. Also: pinned / well-known / wrong server
// keys, rekey on rekey_required, and the refusal when neither ML-KEM source is available.
//
// Needs web/sdk/npm/ (scripts/web-deps) built into the server binary.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { fetchMetrics, httpGet, sampleValue } from '../integration/lib/http.mjs';
import { startServer, stopAll } from '../integration/lib/server.mjs';
import { scaled, uid } from '../integration/lib/util.mjs';
import { assertNoProblems, closeAll, launch, newPage } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const HARNESS_JS = fs.readFileSync(path.join(here, 'lib', 'harness.js'), 'utf8');
const IMPORT_MAP = fs.readFileSync(path.join(here, '..', '..', 'web', 'sdk', 'npm',
                                             'importmap.json'), 'utf8');
const HASHES_DIR = Object.values(JSON.parse(IMPORT_MAP).scopes)
    .map((s) => s['@noble/hashes/']).find(Boolean);

// Hides WebCrypto's ML-KEM (if the browser has one) so the SDK must load noble's.
function hideWebCryptoMlKem() {
    for (const k of ['encapsulateBits', 'decapsulateBits', 'encapsulateKey', 'decapsulateKey']) {
        delete SubtleCrypto.prototype[k];
    }
    const generateKey = SubtleCrypto.prototype.generateKey;
    SubtleCrypto.prototype.generateKey = function (alg, ...rest) {
        if (String(alg?.name ?? alg).startsWith('ML-KEM')) {
            return Promise.reject(new DOMException('hidden by the test', 'NotSupportedError'));
        }
        return generateKey.call(this, alg, ...rest);
    };
}

/**
 * The e2e harness page on the server's origin, with the SDK's import map unless importMap is
 * false. page.frames records every WebSocket frame ({dir, type, text}); page.urls every request.
 */
async function openPqHarness(browser, port, { importMap = true, noWebCryptoKem = false } = {}) {
    const origin = `http://127.0.0.1:${port}`;
    const page = await newPage(browser, origin, { localNetwork: true });
    if (noWebCryptoKem) await page.addInitScript(hideWebCryptoMlKem);
    const map = importMap ? `<script type="importmap">${IMPORT_MAP}</script>` : '';
    await page.context().route(`${origin}/__e2e/pq.html`, (route) => route.fulfill({
        contentType: 'text/html; charset=utf-8',
        body: `<!doctype html><meta charset="utf-8"><title>e2e pq</title>${map}` +
              '<script type="module" src="/__e2e/harness.js"></script>',
    }));
    await page.context().route(`${origin}/__e2e/harness.js`, (route) => route.fulfill({
        contentType: 'text/javascript', body: HARNESS_JS,
    }));
    page.frames = [];
    page.urls = [];
    page.on('request', (r) => page.urls.push(new URL(r.url()).pathname));
    page.on('websocket', (ws) => {
        const record = (dir) => (f) => {
            const text = typeof f.payload === 'string' ? f.payload : null;
            let type = 'binary';
            try {
                type = JSON.parse(text).type;
            } catch {
                /* binary or not JSON: recorded as such */
            }
            page.frames.push({ dir, type, text });
        };
        ws.on('framesent', record('sent'));
        ws.on('framereceived', record('received'));
    });
    await page.goto(`${origin}/__e2e/pq.html`);
    await page.waitForFunction(() => window.harnessReady === true);
    return page;
}

/** Checks that after hello only one handshake went each way in plaintext, then only enc. */
function assertOnlyEnc(page, what, { handshakes = 1 } = {}) {
    const sent = page.frames.filter((f) => f.dir === 'sent').map((f) => f.type);
    const got = page.frames.filter((f) => f.dir === 'received').map((f) => f.type);
    assert.equal(sent[0], 'pq_handshake', `${what}: first frame sent`);
    assert.deepEqual(got.slice(0, 2), ['hello', 'pq_handshake_response'], `${what}: received`);
    assert.deepEqual([...new Set(sent.slice(1))], ['enc'], `${what}: sent after the handshake`);
    assert.deepEqual([...new Set(got.slice(2))], ['enc'], `${what}: received after it`);
    assert.ok(sent.length > 5 && got.length > 5, `${what}: too few frames to mean anything`);
    // Rekeys travel inside: the plaintext handshake is the only one visible.
    assert.equal(sent.filter((t) => t === 'pq_handshake').length, handshakes);
    for (const f of page.frames.slice(2)) {
        // Everything but the base64 ciphertext (which may spell "sdp" by chance) must be bare.
        const outer = JSON.parse(f.text ?? '{}');
        if (outer.type === 'enc') {
            assert.match(outer.ct ?? '', /^[A-Za-z0-9+/]+=*$/, `${what}: ct is base64`);
            delete outer.ct;
        }
        const rest = JSON.stringify(outer);
        assert.ok(!/sdp|candidate|register|userId/.test(rest),
                  `${what}: signaling visible on the wire: ${rest.slice(0, 120)}`);
    }
}

async function apiPort(srv) {
    const line = await srv.waitLog((l) => l.msg === 'api_listening', scaled(5000), 'api_listening');
    return line.port;
}

async function stats(port) {
    const r = await httpGet(port, '/volly/sessions/stats');
    assert.equal(r.status, 200);
    return JSON.parse(r.body);
}

let browser;
before(async () => {
    browser = await launch();
});
after(async () => {
    await closeAll();
    await stopAll();
});

describe('post-quantum session', () => {
    let server;
    let api;
    before(async () => {
        server = await startServer({ args: ['--api-port', '0'] });
        api = await apiPort(server);
    });

    test('two pages talk only over PQ sessions and still open a data channel',
         { timeout: scaled(90000) }, async (t) => {
             const a = await openPqHarness(browser, server.port);
             const b = await openPqHarness(browser, server.port, { noWebCryptoKem: true });
             const ida = uid('pqa');
             const idb = uid('pqb');
             await a.evaluate((id) => window.t.connect(id, { pq: 'ML-KEM-768' }), ida);
             await b.evaluate((id) => window.t.connect(id, { pq: 'X25519MLKEM768',
                                                             serverKey: 'well-known' }), idb);
             const serverKey = JSON.parse(
                 (await httpGet(server.port, '/.well-known/volli/server.json')).body).serverKey;
             const sa = await a.evaluate(() => window.t.client.pqSession);
             const sb = await b.evaluate(() => window.t.client.pqSession);
             assert.equal(sa.algorithm, 'ML-KEM-768');
             assert.equal(sb.algorithm, 'X25519MLKEM768');
             assert.equal(sa.serverKey, serverKey);
             assert.equal(sb.serverKey, serverKey);
             assert.ok(['webcrypto', 'noble'].includes(sa.kem), sa.kem);
             t.diagnostic(`page a's ML-KEM-768: ${sa.kem} (Chromium's own if "webcrypto")`);
             // b had no WebCrypto ML-KEM: noble came through the import map, and its scope made
             // it load the pinned @noble/hashes from the versioned directory.
             assert.equal(sb.kem, 'noble');
             assert.ok(b.urls.includes('/sdk/npm/@noble/post-quantum@0.7.1/ml-kem.js'), b.urls);
             assert.ok(b.urls.includes(`${HASHES_DIR}sha3.js`), b.urls);
             assert.ok(sa.expiresAt > Date.now());

             assert.deepEqual(await a.evaluate((id) => window.t.client.discover(id), idb),
                              { userId: idb, online: true,
                                publicKey: await b.evaluate(() => window.t.client.publicKey) });
             assert.deepEqual(await a.evaluate((id) => window.t.call(id, { data: true }), idb),
                              { ok: true });
             await a.waitForFunction((id) => !!window.t.dcs[id], idb);
             await b.waitForFunction((id) => !!window.t.dcs[id], ida);
             await a.evaluate(([id, text]) => window.t.send(id, text), [idb, 'pq hello from a']);
             await b.evaluate(([id, text]) => window.t.send(id, text), [ida, 'pq hello from b']);
             await b.waitForFunction(() => window.t.msgs.length >= 1);
             await a.waitForFunction(() => window.t.msgs.length >= 1);
             assert.deepEqual(await b.evaluate(() => window.t.msgs),
                              [{ from: ida, data: 'pq hello from a' }]);
             assert.deepEqual(await a.evaluate(() => window.t.msgs),
                              [{ from: idb, data: 'pq hello from b' }]);

             assertOnlyEnc(a, 'page a');
             assertOnlyEnc(b, 'page b');

             // The server agrees: two sessions, one handshake per algorithm, relays went
             // through (inside enc frames), and no frame was refused as plaintext or bad.
             const st = await stats(api);
             assert.equal(st.active_sessions, 2);
             assert.equal(st.total_sessions, 2);
             const m = await fetchMetrics(api);
             for (const alg of ['ML-KEM-768', 'X25519MLKEM768']) {
                 assert.equal(sampleValue(m, 'volli_pq_handshakes_total', { algorithm: alg }), 1);
             }
             assert.ok(sampleValue(m, 'volli_messages_relayed_total', { type: 'offer' }) >= 1);
             assert.ok(sampleValue(m, 'volli_messages_relayed_total', { type: 'answer' }) >= 1);
             const failures = m.samples.filter((s) => s.name === 'volli_pq_failures_total');
             assert.ok(failures.every((s) => s.value === 0), JSON.stringify(failures));

             await b.evaluate((id) => window.t.client.hangup(id), ida);
             await a.waitForFunction((id) => window.t.events.some(
                 (e) => e.type === 'callended' && e.peer === id && e.remote), idb);
             assertNoProblems(a, 'page a');
             assertNoProblems(b, 'page b');
             await Promise.all([a.context().close(), b.context().close()]);
         });

    test('server keys: pinned, wrong, and no ML-KEM at all', { timeout: scaled(60000) },
         async () => {
             const serverKey = JSON.parse(
                 (await httpGet(server.port, '/.well-known/volli/server.json')).body).serverKey;
             const a = await openPqHarness(browser, server.port);
             const pinned = await a.evaluate(([id, key]) => window.t.sdk.Volli.connect(
                 { userId: id, pq: true, serverKey: key, persistKeys: false })
                 .then((c) => c.pqSession.serverKey, (e) => e.code), [uid('pin'), serverKey]);
             assert.equal(pinned, serverKey);

             // A key that is not the server's: refused before anything else is sent.
             const other = Buffer.alloc(32, 7).toString('base64');
             const before0 = a.frames.length;
             const wrong = await a.evaluate(([id, key]) => window.t.sdk.Volli.connect(
                 { userId: id, pq: true, serverKey: key, persistKeys: false })
                 .then(() => 'registered', (e) => e.code), [uid('wrong'), other]);
             assert.equal(wrong, 'server_key_mismatch');
             assert.deepEqual(a.frames.slice(before0).filter((f) => f.dir === 'sent'), []);
             const bad = await a.evaluate(() => window.t.sdk.Volli.connect(
                 { userId: 'x', pq: 'RSA', persistKeys: false }).then(() => 'ok', (e) => e.code));
             assert.equal(bad, 'bad_request');

             // No import map and no WebCrypto ML-KEM: the SDK says so instead of going plain.
             const c = await openPqHarness(browser, server.port, { importMap: false,
                                                                   noWebCryptoKem: true });
             const none = await c.evaluate((id) => window.t.sdk.Volli.connect(
                 { userId: id, pq: true, persistKeys: false })
                 .then(() => 'registered', (e) => e.code), uid('none'));
             assert.equal(none, 'unsupported');
             assert.deepEqual(c.frames.filter((f) => f.dir === 'sent'), []);
             assertNoProblems(a, 'page a');
             await Promise.all([a.context().close(), c.context().close()]);
         });
});

describe('post-quantum rekey', () => {
    test('the SDK rekeys when asked and the session carries on', { timeout: scaled(90000) },
         async () => {
             const srv = await startServer({ args: ['--api-port', '0', '--pq-session-timeout',
                                                    '1', '--pq-rekey-grace', '3'] });
             const api = await apiPort(srv);
             const a = await openPqHarness(browser, srv.port);
             const id = uid('rekey');
             await a.evaluate((u) => window.t.connect(u, { pq: 'X25519MLKEM768' }), id);
             await a.waitForFunction(() => window.t.client.pqSession?.rekeys >= 2, null,
                                     { timeout: scaled(20000) });
             // Requests keep working across the switches (N back at 0 each time).
             for (let i = 0; i < 3; i++) {
                 assert.ok(await a.evaluate(() => window.t.client.ping()) >= 0);
             }
             assert.deepEqual(await a.evaluate((u) => window.t.client.discover(u), id),
                              { userId: id, online: true,
                                publicKey: await a.evaluate(() => window.t.client.publicKey) });
             const events = await a.evaluate(() => window.t.events.map((e) => e.type));
             assert.ok(!events.includes('disconnected'), events.join(','));
             assertOnlyEnc(a, 'page a');
             const st = await stats(api);
             assert.equal(st.active_sessions, 1);
             assert.equal(st.total_sessions, 1);
             assert.ok(st.expired_sessions >= 2, JSON.stringify(st));
             const m = await fetchMetrics(api);
             assert.ok(sampleValue(m, 'volli_pq_handshakes_total',
                                   { algorithm: 'X25519MLKEM768' }) >= 3);
             assert.equal(sampleValue(m, 'volli_pq_failures_total', { reason: 'rekey_timeout' }),
                          0);
             assert.equal(sampleValue(m, 'volli_pq_failures_total', { reason: 'bad_seq' }), 0);
             assertNoProblems(a, 'page a');
             await a.context().close();
         });
});
