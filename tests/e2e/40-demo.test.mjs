// e2e 40: the demo app served at / by volli-signal (the copy built into the binary), driven
// like a user would: every screen loads without console errors or page errors, and a
// screenshot of each is kept under $VOLLI_BUILD_DIR/e2e-artifacts/demo-*.png. One user is on
// a desktop viewport, the other on a phone-size one.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startServer, stopAll } from '../integration/lib/server.mjs';
import { scaled } from '../integration/lib/util.mjs';
import {
    REFUSED_WEBSOCKET, assertNoProblems, closeAll, freePort, launch, newPage, screenshot,
} from './lib/browser.mjs';

const PHONE = { width: 390, height: 844 };
let server;
let browser;
let origin;

before(async () => {
    server = await startServer();
    browser = await launch();
    origin = `http://127.0.0.1:${server.port}`;
});

after(async () => {
    await closeAll();
    await stopAll();
});

async function openDemo(viewport) {
    const page = await newPage(browser, origin, viewport ? { viewport } : {});
    const res = await page.goto(`${origin}/`);
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-type'], /^text\/html/);
    await page.locator('#signin-btn').waitFor();
    return page;
}

async function signIn(page, userId) {
    await page.fill('#user-id', userId);
    await page.click('#signin-btn');
    await page.locator('#screen-main').waitFor();
    assert.equal(await page.textContent('#me-id'), userId);
    await page.locator('#status-pill', { hasText: 'Online' }).waitFor();
}

async function addContact(page, id) {
    await page.fill('#contact-id', id);
    await page.click('#add-contact button');
    await page.locator(`.contact[data-id="${id}"]`).waitFor();
}

describe('demo app', () => {
    test('sign-in screen, and clear errors for a bad id and an unreachable server',
         { timeout: scaled(60000) }, async () => {
             const page = await openDemo();
             assert.equal(await page.title(), 'Volli');
             // The server URL defaults to the page's own origin.
             assert.equal(await page.inputValue('#server-url'), `ws://127.0.0.1:${server.port}/`);
             await screenshot(page, 'demo-01-signin');

             await page.fill('#user-id', 'not valid!');
             await page.click('#signin-btn');
             await page.locator('#signin-error').waitFor();
             assert.match(await page.textContent('#signin-error'), /not valid/);
             assertNoProblems(page, 'sign-in page');

             const closed = await freePort();
             await page.click('#settings summary');
             await page.fill('#server-url', `ws://127.0.0.1:${closed}/`);
             await page.fill('#user-id', 'alice');
             await page.click('#signin-btn');
             await page.locator('#signin-error', { hasText: 'Cannot reach the server' }).waitFor();
             assert.equal(await page.isVisible('#screen-main'), false);
             await screenshot(page, 'demo-02-unreachable');
             // The refused connection is reported by Chromium itself; the app adds nothing.
             assertNoProblems(page, 'unreachable sign-in', { allow: [REFUSED_WEBSOCKET] });
             assert.ok(page.problems.length <= 1, page.problems.join('\n'));
             await page.context().close();
         });

    test('contacts, presence, chat, peer offline, a video call, desktop and phone',
         { timeout: scaled(120000) }, async () => {
             const a = await openDemo();
             const b = await openDemo(PHONE);
             await signIn(a, 'alice');
             await screenshot(a, 'demo-03-main-empty');
             await addContact(a, 'bob');
             await addContact(a, 'carol');
             await a.locator('.contact[data-id="bob"] .dot.off').waitFor();

             // bob signs in on a phone; alice sees him come online live.
             await signIn(b, 'bob');
             await a.locator('.contact[data-id="bob"] .dot.on').waitFor({ timeout: scaled(3000) });
             await a.locator('.contact[data-id="carol"] .dot.off').waitFor();
             await screenshot(a, 'demo-04-contacts');
             await screenshot(b, 'demo-05-phone-empty');

             // Chat over the data channel, both ways.
             await a.click('.contact[data-id="bob"] .contact-open');
             await a.fill('#chat-input', 'Hi Bob, are you there?');
             await a.click('#chat-send');
             await a.locator('.msg.mine', { hasText: 'Hi Bob' }).waitFor();
             // alice was not in bob's contacts: the incoming chat adds her, with an unread badge.
             await b.locator('.contact[data-id="alice"] .badge', { hasText: '1' }).waitFor();
             await screenshot(b, 'demo-06-phone-contacts');
             await b.click('.contact[data-id="alice"] .contact-open');
             await b.locator('.msg.theirs', { hasText: 'Hi Bob, are you there?' }).waitFor();
             assert.equal(await b.isVisible('.contacts'), false, 'phone shows one pane at a time');
             await b.fill('#chat-input', 'Yes! Call me?');
             await b.press('#chat-input', 'Enter');
             await a.locator('.msg.theirs', { hasText: 'Yes! Call me?' }).waitFor();
             await screenshot(a, 'demo-07-chat');
             await screenshot(b, 'demo-08-phone-chat');

             // carol is offline: calling her says so instead of ringing forever.
             await a.click('.contact[data-id="carol"] .contact-open');
             await a.click('#video-call');
             await a.locator('#banner', { hasText: 'carol is offline' }).waitFor();
             await screenshot(a, 'demo-09-peer-offline');
             await a.click('#banner-close');

             // A video call: bob's phone rings, he accepts, both see each other.
             await a.click('.contact[data-id="bob"] .contact-open');
             await a.click('#video-call');
             await b.locator('#incoming[open]').waitFor();
             assert.equal(await b.textContent('#incoming-title'), 'alice is calling');
             assert.equal(await b.textContent('#incoming-kind'), 'Video call');
             await screenshot(b, 'demo-10-phone-incoming');
             await b.click('#accept');
             const playing = (p) => p.waitForFunction(() => {
                 const v = document.getElementById('remote-video');
                 return v.videoWidth > 0 && !v.paused && v.currentTime > 0.3;
             }, null, { timeout: scaled(20000) });
             await Promise.all([playing(a), playing(b)]);
             await a.locator('#call-state', { hasText: 'Video call' }).waitFor();
             await screenshot(a, 'demo-11-video-call');
             await screenshot(b, 'demo-12-phone-video-call');

             await a.click('#mute');
             assert.equal(await a.textContent('#mute'), 'Unmute');
             assert.equal(await a.evaluate(() => document.getElementById('local-video').srcObject
                 .getAudioTracks()[0].enabled), false);
             await a.click('#mute');

             // Chat still works during the call (same connection), then alice hangs up.
             await b.fill('#chat-input', 'Nice to see you');
             await b.click('#chat-send');
             await a.locator('.msg.theirs', { hasText: 'Nice to see you' }).waitFor();
             await a.click('#hangup');
             await a.locator('#call-view').waitFor({ state: 'hidden' });
             await b.locator('#call-view').waitFor({ state: 'hidden' });
             await b.locator('.msg.system', { hasText: 'Call ended by alice' }).waitFor();
             assert.equal(await a.evaluate(() => document.getElementById('local-video').srcObject),
                          null);
             await screenshot(b, 'demo-13-phone-after-call');

             // bob signs out: alice sees him go offline.
             await b.click('#signout');
             await b.locator('#screen-signin').waitFor();
             await a.locator('.contact[data-id="bob"] .dot.off').waitFor({ timeout: scaled(3000) });
             assertNoProblems(a, 'alice (desktop)');
             assertNoProblems(b, 'bob (phone)');

             // The server goes away: alice's page says it is reconnecting, and stays usable.
             assert.equal((await server.stop('SIGTERM')).code, 0, server.tail());
             await a.locator('#status-pill', { hasText: 'Reconnecting' }).waitFor();
             assert.equal(await a.isVisible('#contact-list'), true);
             await screenshot(a, 'demo-14-reconnecting');
             assertNoProblems(a, 'alice while reconnecting', { allow: [REFUSED_WEBSOCKET] });
             await Promise.all([a.context().close(), b.context().close()]);
         });
});
