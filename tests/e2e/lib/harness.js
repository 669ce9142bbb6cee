// Page-side test harness (runs in Chromium, not in Node). tests/e2e/lib/browser.mjs serves it
// inside a blank page on the server's own origin; it imports the SDK exactly as an
// application would (from /sdk/volli.js, served by volli-signal) and records what happens so
// the Node side can wait for it with page.waitForFunction.

import * as sdk from '/sdk/volli.js';

const t = {
    sdk,
    client: null,
    pcs: {}, // peer -> the RTCPeerConnection of the current call
    dcs: {}, // peer -> the open "volli" data channel
    msgs: [], // {from, data} received over data channels
    events: [], // {type, ...detail} client events, JSON-safe
    incoming: [], // peers that called us
    callErrors: [], // {peer, code} from call() / accept()
    autoAccept: true,
    holdOffers: false, // see the WebSocket wrapper below
    acceptOptions: {},

    async connect(userId, options = {}) {
        const c = new sdk.VolliClient({ userId, ...options });
        for (const type of ['connected', 'disconnected', 'registered', 'presence', 'error',
                            'callended', 'closed']) {
            c.on(type, (d) => {
                const rec = { type, at: performance.now() };
                for (const k of ['server', 'code', 'reason', 'userId', 'online', 'peer', 'remote',
                                 'reconnectIn']) {
                    if (d && d[k] !== undefined) rec[k] = d[k];
                }
                t.events.push(rec);
            });
        }
        c.onIncomingCall = (inc) => {
            t.incoming.push(inc.from);
            if (!t.autoAccept) return;
            inc.accept(t.acceptOptions).then((pc) => t.adopt(pc), (err) => {
                t.callErrors.push({ peer: inc.from, code: err.code, message: err.message });
            });
        };
        t.client = c;
        await c.connect();
        return c.userId;
    },

    adopt(pc) {
        const peer = pc.volliPeer;
        t.pcs[peer] = pc;
        if (pc.volliDataChannel) {
            pc.volliDataChannel.then((dc) => {
                t.dcs[peer] = dc;
                dc.addEventListener('message', (e) => t.msgs.push({ from: peer, data: e.data }));
            }, () => {});
        }
        return pc;
    },

    async call(peer, options = {}) {
        try {
            t.adopt(await t.client.call(peer, options));
            return { ok: true };
        } catch (err) {
            t.callErrors.push({ peer, code: err.code, message: err.message });
            return { ok: false, code: err.code, message: err.message };
        }
    },

    async send(peer, text) {
        const dc = await t.pcs[peer].volliDataChannel;
        dc.send(text);
    },

    /** How many RTCPeerConnections this page made, and how many are not closed. */
    pcCounts() {
        const all = window.__pcs || [];
        return { made: all.length,
                 open: all.filter((pc) => pc.signalingState !== 'closed').length,
                 connected: all.filter((pc) => pc.connectionState === 'connected').length };
    },

    /** Types of the remote ICE candidates the connection to peer knows (host, prflx, ...). */
    async remoteCandidateTypes(peer) {
        const stats = await t.pcs[peer].getStats();
        const types = new Set();
        stats.forEach((s) => {
            if (s.type === 'remote-candidate') types.add(s.candidateType);
        });
        return [...types].sort();
    },

    async inboundVideo(peer) {
        const stats = await t.pcs[peer].getStats();
        let frames = 0;
        let bytes = 0;
        stats.forEach((s) => {
            if (s.type === 'inbound-rtp' && s.kind === 'video') {
                frames += s.framesDecoded || 0;
                bytes += s.bytesReceived || 0;
            }
        });
        return { frames, bytes };
    },
};

// Count every peer connection the SDK creates (for the glare test's "exactly one survives").
const Native = window.RTCPeerConnection;
window.__pcs = [];
window.RTCPeerConnection = class extends Native {
    constructor(...args) {
        super(...args);
        window.__pcs.push(this);
    }
};

// Glare tests need both offers in flight at once. With t.holdOffers set, an offer that
// arrives before this page has sent its own is held back until it has: real glare, every time.
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
        super(...args);
        this.held = [];
        this.sentOffer = false;
        this.userOnMessage = null;
        super.onmessage = (ev) => {
            let type = null;
            try {
                type = JSON.parse(ev.data).type;
            } catch {
                /* not ours to judge */
            }
            // Once one message is held, everything after it waits too: order is kept.
            const hold = t.holdOffers && !this.sentOffer && (type === 'offer' || this.held.length);
            if (hold) this.held.push(ev);
            else this.userOnMessage?.(ev);
        };
    }

    get onmessage() {
        return this.userOnMessage;
    }

    set onmessage(fn) {
        this.userOnMessage = fn;
    }

    send(data) {
        super.send(data);
        if (!this.sentOffer && typeof data === 'string' && data.includes('"type":"offer"')) {
            this.sentOffer = true;
            const release = this.held.splice(0);
            queueMicrotask(() => release.forEach((ev) => this.userOnMessage?.(ev)));
        }
    }
};

window.t = t;
window.harnessReady = true;
