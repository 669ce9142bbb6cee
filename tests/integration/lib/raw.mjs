// Raw TCP access to the server: hand-written HTTP requests and RFC 6455 frames, for what the
// `ws` client will not send (unmasked, reserved bits, bad opcodes, invalid UTF-8, fragments).

import crypto from 'node:crypto';
import net from 'node:net';
import { scaled, withTimeout } from './util.mjs';

export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Encodes one client frame. mask: true (random key) | false | a 4-byte Buffer. */
export function encodeFrame({ opcode = 1, payload = Buffer.alloc(0), fin = true, rsv = 0,
                              mask = true } = {}) {
    const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
    const len = data.length;
    let header;
    if (len < 126) {
        header = Buffer.alloc(2);
        header[1] = len;
    } else if (len < 65536) {
        header = Buffer.alloc(4);
        header[1] = 126;
        header.writeUInt16BE(len, 2);
    } else {
        header = Buffer.alloc(10);
        header[1] = 127;
        header.writeBigUInt64BE(BigInt(len), 2);
    }
    header[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
    if (!mask) return Buffer.concat([header, data]);
    header[1] |= 0x80;
    const key = Buffer.isBuffer(mask) ? mask : crypto.randomBytes(4);
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = data[i] ^ key[i & 3];
    return Buffer.concat([header, key, body]);
}

/** Parses one frame from buf; returns { frame, rest } or null if incomplete. */
export function decodeFrame(buf) {
    if (buf.length < 2) return null;
    const fin = (buf[0] & 0x80) !== 0;
    const rsv = (buf[0] >> 4) & 7;
    const opcode = buf[0] & 0x0f;
    const masked = (buf[1] & 0x80) !== 0;
    let len = buf[1] & 0x7f;
    let off = 2;
    if (len === 126) {
        if (buf.length < 4) return null;
        len = buf.readUInt16BE(2);
        off = 4;
    } else if (len === 127) {
        if (buf.length < 10) return null;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
    }
    let key = null;
    if (masked) {
        if (buf.length < off + 4) return null;
        key = buf.subarray(off, off + 4);
        off += 4;
    }
    if (buf.length < off + len) return null;
    const payload = Buffer.from(buf.subarray(off, off + len));
    if (key) for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
    return { frame: { fin, rsv, opcode, masked, payload }, rest: buf.subarray(off + len) };
}

/** Splits an HTTP response head from buf; null until "\r\n\r\n" has arrived. */
function parseHead(buf) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    const headers = {};
    for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    return { status: m ? Number(m[1]) : NaN, statusLine: lines[0], headers,
             rest: buf.subarray(end + 4) };
}

function connectTcp(port, ms) {
    return withTimeout(new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
        s.once('error', reject);
    }), ms, `TCP connect to ${port}`);
}

/**
 * Sends `request` (a complete HTTP/1.1 request text) and resolves with
 * { status, statusLine, headers, body } once the head and any Content-Length body arrived,
 * or the server closed. The socket is destroyed afterwards.
 */
export async function rawHttp(port, request, ms = scaled(3000)) {
    const socket = await connectTcp(port, ms);
    try {
        return await withTimeout(new Promise((resolve, reject) => {
            let buf = Buffer.alloc(0);
            const finish = () => {
                const head = parseHead(buf);
                if (!head) return false;
                const cl = head.headers['content-length'];
                if (cl !== undefined && head.rest.length < Number(cl)) return false;
                resolve({ status: head.status, statusLine: head.statusLine,
                          headers: head.headers, body: head.rest.toString('utf8') });
                return true;
            };
            socket.on('data', (d) => {
                buf = Buffer.concat([buf, d]);
                finish();
            });
            socket.on('end', () => {
                if (!finish()) reject(new Error(`connection closed before a full response: ` +
                                                `${JSON.stringify(buf.toString('latin1'))}`));
            });
            socket.on('error', reject);
            socket.write(request);
        }), ms, `HTTP response to ${JSON.stringify(request.split('\r\n')[0])}`);
    } finally {
        socket.destroy();
    }
}

export function upgradeRequest(path, key, extra = '') {
    return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
        `${extra}\r\n`;
}

const sockets = new Set();

/** Destroys every raw socket still open (for after() hooks). */
export function destroyAllRaw() {
    for (const s of sockets) s.destroy();
    sockets.clear();
}

/** A WebSocket connection driven frame by frame over a plain TCP socket. */
export class RawWs {
    constructor(socket, rest) {
        this.socket = socket;
        this.buf = Buffer.alloc(0);
        this.frames = [];
        this.waiters = [];
        this.ended = false;
        this.protocolError = null;
        sockets.add(socket);
        this.closed = new Promise((resolve) => {
            socket.on('close', () => {
                this.ended = true;
                sockets.delete(socket);
                for (const w of this.waiters.splice(0)) {
                    w.reject(new Error('TCP connection closed while waiting for a frame'));
                }
                resolve();
            });
        });
        socket.on('error', () => {});
        socket.on('data', (d) => this.onData(d));
        if (rest.length) this.onData(rest);
        socket.resume();
    }

    /** Upgrades on path and checks the 101 answer and its Sec-WebSocket-Accept. */
    static async connect(port, { path = '/', ms = scaled(3000) } = {}) {
        const socket = await connectTcp(port, ms);
        sockets.add(socket);
        const key = crypto.randomBytes(16).toString('base64');
        const head = await withTimeout(new Promise((resolve, reject) => {
            let buf = Buffer.alloc(0);
            const onData = (d) => {
                buf = Buffer.concat([buf, d]);
                const h = parseHead(buf);
                if (!h) return;
                socket.off('data', onData);
                socket.pause();
                resolve(h);
            };
            socket.on('data', onData);
            socket.once('error', reject);
            socket.once('end', () => reject(new Error('closed during the handshake')));
            socket.write(upgradeRequest(path, key));
        }), ms, `WebSocket handshake on ${path}`);
        if (head.status !== 101) {
            socket.destroy();
            throw new Error(`upgrade refused: ${head.statusLine}`);
        }
        const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
        if (head.headers['sec-websocket-accept'] !== accept) {
            socket.destroy();
            throw new Error(`bad Sec-WebSocket-Accept: ${head.headers['sec-websocket-accept']}`);
        }
        return new RawWs(socket, head.rest);
    }

    onData(d) {
        this.buf = Buffer.concat([this.buf, d]);
        for (;;) {
            const r = decodeFrame(this.buf);
            if (!r) break;
            this.buf = Buffer.from(r.rest);
            const w = this.waiters.shift();
            if (w) w.resolve(r.frame);
            else this.frames.push(r.frame);
        }
    }

    send(frame) {
        this.socket.write(encodeFrame(frame));
    }

    sendBytes(buf) {
        this.socket.write(buf);
    }

    /** Sends a masked text frame with `text` (a string or Buffer of raw bytes). */
    sendText(text) {
        this.send({ opcode: 1, payload: text });
    }

    nextFrame(ms = scaled(3000)) {
        if (this.frames.length) return Promise.resolve(this.frames.shift());
        if (this.ended) return Promise.reject(new Error('TCP connection already closed'));
        let waiter;
        const p = new Promise((resolve, reject) => {
            waiter = { resolve, reject };
            this.waiters.push(waiter);
        });
        return withTimeout(p, ms, 'a frame from the server').finally(() => {
            this.waiters = this.waiters.filter((w) => w !== waiter);
        });
    }

    /** Next text frame parsed as JSON (skipping pings). */
    async nextJson(ms = scaled(3000)) {
        for (;;) {
            const f = await this.nextFrame(ms);
            if (f.opcode === 9) continue;
            if (f.opcode !== 1) {
                throw new Error(`expected a text frame, got opcode ${f.opcode} ` +
                                `${f.payload.toString('hex').slice(0, 80)}`);
            }
            return JSON.parse(f.payload.toString('utf8'));
        }
    }

    /**
     * Skips data frames until a close frame arrives; resolves with { code, reason, frame }
     * (code null for an empty close payload).
     */
    async waitCloseFrame(ms = scaled(3000)) {
        const deadline = Date.now() + ms;
        for (;;) {
            const left = Math.max(1, deadline - Date.now());
            const f = await this.nextFrame(left);
            if (f.opcode !== 8) continue;
            const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
            return { code, reason: f.payload.subarray(2).toString('utf8'), frame: f };
        }
    }

    /** Waits for the server to close the TCP connection. */
    waitEnd(ms = scaled(3000)) {
        return withTimeout(this.closed, ms, 'the server to close the TCP connection');
    }

    destroy() {
        this.socket.destroy();
    }
}
