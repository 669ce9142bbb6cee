// Tier 55: RFC 6455 framing from a raw TCP socket: protocol errors close only the offending
// connection (1002, 1007 for invalid UTF-8), fragmentation and control frames work.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { closeAllClients, connectAs } from './lib/client.mjs';
import { destroyAllRaw, encodeFrame, RawWs } from './lib/raw.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { uid } from './lib/util.mjs';

let srv;
let pair;
before(async () => {
    srv = await startServer();
    pair = { a: await connectAs(srv.port, uid('fa')), b: await connectAs(srv.port, uid('fb')) };
});
after(async () => {
    closeAllClients();
    destroyAllRaw();
    await stopAll();
});

/** Opens a raw connection and consumes the hello, checking the server's frame format. */
async function open() {
    const ws = await RawWs.connect(srv.port);
    const f = await ws.nextFrame();
    assert.equal(f.opcode, 1, 'first frame is text');
    assert.equal(f.fin, true);
    assert.equal(f.masked, false, 'server frames must not be masked');
    assert.equal(f.rsv, 0);
    assert.equal(JSON.parse(f.payload.toString('utf8')).type, 'hello');
    return ws;
}

async function assertPairWorks(tag) {
    pair.a.send({ type: 'offer', to: pair.b.userId, offer: tag });
    const m = await pair.b.recvType('offer');
    assert.equal(m.offer, tag);
}

/** Sends bytes and expects a close frame with `code`, then the TCP connection to end. */
async function expectClosedWith(ws, code, what) {
    const c = await ws.waitCloseFrame();
    assert.equal(c.code, code, `${what}: close code ${c.code}, want ${code}`);
    assert.equal(c.frame.masked, false);
    await ws.waitEnd();
}

describe('framing', () => {
    test('an unmasked client frame closes that connection with 1002 only', async () => {
        const ws = await open();
        ws.send({ opcode: 1, payload: '{"type":"ping"}', mask: false });
        await expectClosedWith(ws, 1002, 'unmasked frame');
        await assertPairWorks('after-unmasked');
    });

    const protocolErrors = {
        'a reserved bit without an extension': { opcode: 1, payload: '{"type":"ping"}', rsv: 4 },
        'RSV2 and RSV3': { opcode: 1, payload: '{"type":"ping"}', rsv: 3 },
        'reserved data opcode 0x3': { opcode: 3, payload: 'x' },
        'reserved control opcode 0xB': { opcode: 0xb, payload: '' },
        'a continuation frame with nothing to continue': { opcode: 0, payload: 'x' },
        'a fragmented ping': { opcode: 9, payload: 'x', fin: false },
        'a ping with a 126-byte payload': { opcode: 9, payload: Buffer.alloc(126, 0x61) },
        'a close frame with a 1-byte payload': { opcode: 8, payload: Buffer.from([3]) },
    };
    for (const [name, frame] of Object.entries(protocolErrors)) {
        test(`${name} closes with 1002`, async () => {
            const ws = await open();
            ws.send(frame);
            await expectClosedWith(ws, 1002, name);
            await assertPairWorks(`after ${name}`);
        });
    }

    test('a new data frame inside a fragmented message closes with 1002', async () => {
        const ws = await open();
        ws.send({ opcode: 1, payload: '{"type":', fin: false });
        ws.send({ opcode: 1, payload: '"ping"}' });
        await expectClosedWith(ws, 1002, 'interleaved data frame');
        await assertPairWorks('after-interleave');
    });

    test('invalid UTF-8 in a text frame closes with 1007', async () => {
        const ws = await open();
        ws.send({ opcode: 1, payload: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) });
        await expectClosedWith(ws, 1007, 'invalid UTF-8');
        // Overlong encodings and surrogates are invalid too.
        const ws2 = await open();
        ws2.send({ opcode: 1, payload: Buffer.from('"\xc0\xaf"', 'latin1') });
        await expectClosedWith(ws2, 1007, 'overlong UTF-8');
        const ws3 = await open();
        ws3.send({ opcode: 1, payload: Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]) });
        await expectClosedWith(ws3, 1007, 'UTF-16 surrogate in UTF-8');
        await assertPairWorks('after-utf8');
    });

    test('a fragmented message is reassembled, with a ping between fragments', async () => {
        const ws = await open();
        ws.send({ opcode: 1, payload: '{"type":"pi', fin: false });
        ws.send({ opcode: 9, payload: 'mid' });
        ws.send({ opcode: 0, payload: 'ng","id":"fr', fin: false });
        ws.send({ opcode: 0, payload: 'ag"}' });
        const pong = await ws.nextFrame();
        assert.equal(pong.opcode, 10, 'the control frame is answered at once with a pong');
        assert.equal(pong.payload.toString(), 'mid');
        const m = await ws.nextJson();
        assert.deepEqual(m, { type: 'pong', id: 'frag' });
        // A multi-byte character split across fragments is still valid UTF-8.
        const snow = Buffer.from('{"type":"ping","id":"☃"}', 'utf8');
        const cut = snow.indexOf(0xe2) + 1;
        ws.send({ opcode: 1, payload: snow.subarray(0, cut), fin: false });
        ws.send({ opcode: 0, payload: snow.subarray(cut) });
        assert.deepEqual(await ws.nextJson(), { type: 'pong', id: '☃' });
        ws.destroy();
    });

    test('a ping frame is answered with a pong carrying the same payload', async () => {
        const ws = await open();
        const payload = Buffer.from([1, 2, 3, 250, 251, 0]);
        ws.send({ opcode: 9, payload });
        const f = await ws.nextFrame();
        assert.equal(f.opcode, 10);
        assert.equal(f.fin, true);
        assert.deepEqual(f.payload, payload);
        // An unsolicited pong is ignored.
        ws.send({ opcode: 10, payload: 'hi' });
        ws.sendText('{"type":"ping","id":"after-pong"}');
        assert.deepEqual(await ws.nextJson(), { type: 'pong', id: 'after-pong' });
        ws.destroy();
    });

    test('a client close frame is echoed and the TCP connection ends', async () => {
        const ws = await open();
        const body = Buffer.alloc(2);
        body.writeUInt16BE(1000);
        ws.send({ opcode: 8, payload: body });
        await expectClosedWith(ws, 1000, 'client close');
    });

    test('frames with 16-bit and 64-bit lengths, delivered in pieces, work', async () => {
        const ws = await open();
        const mid = JSON.stringify({ type: 'ping', id: 'm', pad: 'x'.repeat(300) });
        ws.sendText(mid);
        assert.deepEqual(await ws.nextJson(), { type: 'pong', id: 'm' });
        // 65536 bytes: exactly the default limit, and the smallest payload that needs the
        // 64-bit length form (RFC 6455 requires the minimal length encoding).
        const big = { type: 'ping', id: 'l64', pad: '' };
        big.pad = 'y'.repeat(65536 - JSON.stringify(big).length);
        const frame = encodeFrame({ opcode: 1, payload: JSON.stringify(big) });
        assert.equal(frame[1] & 0x7f, 127);
        // The 14-byte header one byte at a time, then the body in uneven chunks.
        for (let i = 0; i < 14; i++) {
            ws.sendBytes(frame.subarray(i, i + 1));
            await new Promise((r) => setImmediate(r));
        }
        for (let off = 14; off < frame.length; off += 7777) {
            ws.sendBytes(frame.subarray(off, Math.min(off + 7777, frame.length)));
            await new Promise((r) => setImmediate(r));
        }
        assert.deepEqual(await ws.nextJson(), { type: 'pong', id: 'l64' });
        ws.destroy();
    });

    test('several frames in one TCP write are all processed in order', async () => {
        const ws = await open();
        const bufs = [];
        for (let i = 0; i < 20; i++) {
            bufs.push(encodeFrame({ opcode: 1, payload: `{"type":"ping","id":"b${i}"}` }));
        }
        ws.sendBytes(Buffer.concat(bufs));
        for (let i = 0; i < 20; i++) {
            assert.deepEqual(await ws.nextJson(), { type: 'pong', id: `b${i}` });
        }
        ws.destroy();
        await assertPairWorks('after-batch');
    });
});
