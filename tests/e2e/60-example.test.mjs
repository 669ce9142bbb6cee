// e2e 60: the minimal example page of docs/sdk.md (web/demo/example.html, served by the
// server at /example.html) works as documented in two pages, and the document really
// contains that page verbatim, so the two cannot drift apart.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { startServer, stopAll } from '../integration/lib/server.mjs';
import { scaled } from '../integration/lib/util.mjs';
import { assertNoProblems, closeAll, launch, newPage, screenshot } from './lib/browser.mjs';

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

test('docs/sdk.md includes web/demo/example.html verbatim', () => {
    const doc = fs.readFileSync('docs/sdk.md', 'utf8');
    const page = fs.readFileSync('web/demo/example.html', 'utf8');
    assert.ok(doc.includes('```html\n' + page + '```\n'),
              'the example in docs/sdk.md differs from web/demo/example.html');
});

test('the example page: connect, presence, data channel, messages both ways',
     { timeout: scaled(60000) }, async () => {
         const origin = `http://127.0.0.1:${server.port}`;
         const open = async () => {
             const page = await newPage(browser, origin);
             const res = await page.goto(`${origin}/example.html`);
             assert.equal(res.status(), 200);
             return page;
         };
         const logHas = (page, line) => page.waitForFunction(
             (l) => document.getElementById('log').textContent.split('\n').includes(l), line);
         const a = await open();
         const b = await open();

         await a.fill('#me', 'ex-a');
         await a.fill('#peer', 'ex-b');
         await a.click('#connect');
         await logHas(a, 'registered as ex-a');
         await logHas(a, 'ex-b is offline');

         await b.fill('#me', 'EX-B'); // ids are folded to lower case, like the server does
         await b.fill('#peer', 'ex-a');
         await b.click('#connect');
         await logHas(b, 'registered as ex-b');
         await logHas(b, 'ex-a is online');
         await logHas(a, 'ex-b is online');

         await a.click('#call');
         await logHas(a, 'channel to ex-b open');
         await logHas(b, 'ex-a is calling');
         await logHas(b, 'channel to ex-a open');

         await a.fill('#text', 'hello b');
         await a.click('#send');
         await logHas(b, 'ex-a: hello b');
         await b.fill('#text', 'hi a');
         await b.click('#send');
         await logHas(a, 'ex-b: hi a');
         await screenshot(a, 'example-a');
         await screenshot(b, 'example-b');
         assertNoProblems(a, 'example page a');
         assertNoProblems(b, 'example page b');
     });
