// Volli SDK calls: WebRTC signaling over a VolliClient. Owns at most one call per peer: its
// RTCPeerConnection, the local media it acquired, trickle ICE in both directions (remote
// candidates that arrive before the remote description are queued; local ones are held until
// the offer or answer has gone out, so the peer never sees a candidate before its session),
// glare resolution and the "volli" data channel. Every message of a call carries a `callId`
// (an extra member the server forwards), so late messages of an ended or abandoned attempt
// are dropped instead of disturbing the next call.
//
// Glare rule: when two users call each other at once, the offer of the user whose folded id
// is smaller (plain string comparison) wins. The other side closes its own half-made
// connection, answers the winning offer with the media it asked for, and its call() resolves
// with the connection that answers. Never logs SDPs or candidates.

import { VolliError, quiet } from './errors.js';
import { foldUserId, isValidUserId } from './keys.js';

export const DATA_CHANNEL_LABEL = 'volli';

function newCallId() {
    const b = crypto.getRandomValues(new Uint8Array(9));
    return btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_');
}

function offeredMedia(sdp) {
    const text = typeof sdp === 'string' ? sdp : '';
    return { audio: /^m=audio /m.test(text), video: /^m=video /m.test(text),
             data: /^m=application /m.test(text) };
}

function deferred() {
    const d = {};
    d.promise = new Promise((resolve, reject) => {
        d.resolve = resolve;
        d.reject = reject;
    });
    quiet(d.promise);
    return d;
}

async function acquireMedia(options) {
    if (options.stream) return { stream: options.stream, owned: false };
    const audio = options.audio ?? false;
    const video = options.video ?? false;
    if (!audio && !video) return { stream: null, owned: false };
    if (!navigator.mediaDevices?.getUserMedia) {
        throw new VolliError('media', 'this page cannot use the camera or microphone');
    }
    try {
        return { stream: await navigator.mediaDevices.getUserMedia({ audio, video }), owned: true };
    } catch (err) {
        throw new VolliError('media', `camera/microphone unavailable: ${err.name}`, { cause: err });
    }
}

/** An offer waiting for the application: accept(options) or reject(reason). */
export class IncomingCall {
    constructor(manager, call) {
        this.manager = manager;
        this.call = call;
        this.from = call.peer;
        this.callId = call.callId;
        const media = offeredMedia(call.offer?.sdp);
        this.audio = media.audio;
        this.video = media.video;
        this.data = media.data;
    }

    /**
     * Answers with local media (options: audio, video, stream; default: the kinds offered).
     * Resolves with the RTCPeerConnection.
     */
    accept(options = {}) {
        return this.manager.accept(this.call, { audio: this.audio, video: this.video, ...options });
    }

    /** Declines: the caller's call() rejects with code "rejected" and this reason. */
    reject(reason = 'declined') {
        this.manager.end(this.call, { reason, sendBye: true, remote: false });
    }
}

export class CallManager {
    constructor(client) {
        this.client = client;
        this.calls = new Map(); // folded peer id -> call record
    }

    list() {
        return [...this.calls.values()].map((c) => ({ peer: c.peer, state: c.state, role: c.role,
                                                      pc: c.pc }));
    }

    // ---- outgoing ------------------------------------------------------------------------

    async call(userId, options = {}) {
        if (!isValidUserId(userId)) {
            throw new VolliError('invalid_user_id', `invalid user id: ${userId}`);
        }
        const peer = foldUserId(userId);
        if (peer === this.client.userId) {
            throw new VolliError('bad_request', 'cannot call yourself');
        }
        await this.client.waitRegistered();
        const existing = this.calls.get(peer);
        if (existing && existing.role === 'callee' && existing.state === 'ringing') {
            // They called first and we are calling back: that is a yes.
            return this.accept(existing, options);
        }
        if (existing && existing.state !== 'connected') {
            // A call with this peer is being set up (ours, or theirs that we accepted): the
            // intent is the same, so both callers share it instead of tearing it down.
            return existing.result.promise;
        }
        if (existing) this.end(existing, { reason: 'replaced', sendBye: true, remote: false });
        const call = this.newCall(peer, 'caller', newCallId(), options);
        call.state = 'calling';
        call.media = quiet(acquireMedia(options));
        this.startOffer(call).catch((err) => this.end(call, { reason: 'failed', sendBye: true,
                                                            error: err }));
        return call.result.promise;
    }

    newCall(peer, role, callId, options) {
        const call = {
            peer, role, callId, options, state: 'new', pc: null, gen: 0, offer: null,
            remoteQueue: [], localQueue: [], localReady: false, media: null, timer: null,
            result: deferred(), dataChannel: null,
        };
        this.calls.set(peer, call);
        return call;
    }

    async startOffer(call) {
        const gen = ++call.gen;
        const { stream } = await call.media;
        if (this.stale(call, gen)) return;
        const pc = this.makePc(call, stream);
        if (call.options.data) {
            const dc = pc.createDataChannel(DATA_CHANNEL_LABEL);
            this.exposeChannel(call, pc, dc);
        }
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        if (this.stale(call, gen)) return;
        await this.client.send(call.peer, 'offer', { type: 'offer', sdp: pc.localDescription.sdp },
                               { callId: call.callId });
        if (this.stale(call, gen)) return;
        this.flushLocal(call);
        if (call.state !== 'calling') return; // answered already, before our ping came back
        call.timer = setTimeout(() => {
            this.end(call, { reason: 'timeout', sendBye: true,
                             error: new VolliError('timeout', `${call.peer} did not answer`) });
        }, this.client.options.ringTimeout);
    }

    // ---- incoming ------------------------------------------------------------------------

    handle(m) {
        const peer = m.from;
        const call = this.calls.get(peer);
        const sameCall = call && (m.callId === undefined || m.callId === call.callId);
        switch (m.type) {
        case 'offer':
            this.onOffer(peer, call, m);
            break;
        case 'answer':
            if (sameCall && call.role === 'caller') this.onAnswer(call, m);
            break;
        case 'ice-candidate':
            if (sameCall && m.candidate && typeof m.candidate === 'object') {
                this.addRemoteCandidate(call, m.candidate);
            }
            break;
        case 'bye':
            if (sameCall) {
                const reason = typeof m.reason === 'string' ? m.reason : 'hangup';
                const error = new VolliError('rejected', `${peer} ended the call: ${reason}`,
                                             { reason });
                this.end(call, { reason, remote: true, error });
            }
            break;
        default:
            break;
        }
    }

    onOffer(peer, call, m) {
        if (!m.offer || typeof m.offer.sdp !== 'string') return;
        if (call && call.callId === m.callId) return; // a duplicate
        if (call && call.role === 'caller' && call.state === 'calling') {
            if (this.client.userId < peer) return; // glare, and our offer wins: theirs is dropped
            this.loseGlare(call, m);
            return;
        }
        if (call) this.end(call, { reason: 'replaced', remote: true });
        const incoming = this.newCall(peer, 'callee', m.callId, {});
        incoming.offer = m.offer;
        incoming.state = 'ringing';
        incoming.timer = setTimeout(() => {
            this.end(incoming, { reason: 'timeout', sendBye: true });
        }, this.client.options.ringTimeout);
        const ic = new IncomingCall(this, incoming);
        incoming.incoming = ic;
        const handler = this.client.onIncomingCall;
        if (typeof handler !== 'function' && this.client.incomingListeners.size === 0) {
            ic.reject('unavailable'); // nobody here takes calls
            return;
        }
        this.client.emit('incomingcall', ic);
        if (typeof handler === 'function') {
            try {
                handler(ic);
            } catch (err) {
                queueMicrotask(() => {
                    throw err;
                });
            }
        }
    }

    // Our own offer lost the glare: drop it and answer theirs with the media we wanted.
    loseGlare(call, m) {
        call.gen += 1; // invalidates startOffer's continuation, even mid-getUserMedia
        if (call.pc) call.pc.close();
        call.pc = null;
        clearTimeout(call.timer);
        call.role = 'callee';
        call.callId = m.callId;
        call.offer = m.offer;
        call.remoteQueue = [];
        call.localQueue = [];
        call.localReady = false;
        call.state = 'answering';
        this.answer(call).catch((err) => this.end(call, { reason: 'failed', sendBye: true,
                                                         error: err }));
    }

    accept(call, options) {
        if (call.state !== 'ringing') {
            return Promise.reject(new VolliError('closed', 'the call is no longer ringing'));
        }
        clearTimeout(call.timer);
        call.options = options;
        call.state = 'answering';
        call.media = quiet(acquireMedia(options));
        this.answer(call).catch((err) => this.end(call, { reason: 'failed', sendBye: true,
                                                         error: err }));
        return call.result.promise;
    }

    async answer(call) {
        const gen = ++call.gen;
        const { stream } = await call.media;
        if (this.stale(call, gen)) return;
        const pc = this.makePc(call, stream);
        if (offeredMedia(call.offer.sdp).data) this.exposeChannel(call, pc, null);
        await pc.setRemoteDescription(call.offer);
        if (this.stale(call, gen)) return;
        this.flushRemote(call);
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        if (this.stale(call, gen)) return;
        const desc = { type: 'answer', sdp: pc.localDescription.sdp };
        // Hand the connection over now rather than after the relay's ping round trip: the
        // data channel can open as soon as the caller has the answer, and an application
        // that got the channel late would miss the caller's first messages.
        this.client.send(call.peer, 'answer', desc, { callId: call.callId }).catch((err) => {
            // A lost connection may still have delivered it; a refusal (peer_offline) did not.
            if (!['not_connected', 'timeout', 'closed'].includes(err.code)) {
                this.end(call, { reason: 'failed', error: err });
            }
        });
        this.flushLocal(call);
        call.state = 'connecting';
        call.result.resolve(pc);
    }

    async onAnswer(call, m) {
        const pc = call.pc;
        if (!pc || pc.signalingState !== 'have-local-offer' || !m.answer) return;
        const gen = call.gen;
        try {
            await pc.setRemoteDescription(m.answer);
        } catch (err) {
            this.end(call, { reason: 'failed', sendBye: true,
                             error: new VolliError('failed', `bad answer: ${err.message}`) });
            return;
        }
        if (this.stale(call, gen)) return;
        clearTimeout(call.timer);
        this.flushRemote(call);
        call.state = 'connecting';
        call.result.resolve(pc);
    }

    // ---- the peer connection -------------------------------------------------------------

    makePc(call, stream) {
        const pc = new RTCPeerConnection({ iceServers: this.client.options.iceServers ?? [] });
        const callId = call.callId;
        call.pc = pc;
        pc.volliPeer = call.peer;
        pc.volliCallId = callId;
        pc.volliRole = call.role;
        pc.volliLocalStream = stream;
        pc.volliRemoteStream = new MediaStream();
        pc.volliDataChannel = null;
        const ended = deferred();
        pc.volliEnded = ended.promise;
        call.ended = ended;
        if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
        pc.addEventListener('track', (ev) => {
            if (!pc.volliRemoteStream.getTracks().includes(ev.track)) {
                pc.volliRemoteStream.addTrack(ev.track);
            }
        });
        pc.addEventListener('icecandidate', (ev) => {
            if (!ev.candidate || call.pc !== pc) return;
            const cand = ev.candidate.toJSON();
            if (call.localReady) this.sendCandidate(call, cand, callId);
            else call.localQueue.push(cand);
        });
        pc.addEventListener('connectionstatechange', () => {
            if (call.pc !== pc) return;
            if (pc.connectionState === 'connected') call.state = 'connected';
            if (pc.connectionState === 'failed') {
                this.end(call, { reason: 'failed', sendBye: true,
                                 error: new VolliError('failed', 'the connection failed') });
            }
        });
        return pc;
    }

    // pc.volliDataChannel: a Promise of the open "volli" channel (ours, or the caller's).
    exposeChannel(call, pc, dc) {
        const d = deferred();
        pc.volliDataChannel = d.promise;
        call.dataChannel = d;
        const watch = (channel) => {
            if (channel.readyState === 'open') d.resolve(channel);
            else channel.addEventListener('open', () => d.resolve(channel), { once: true });
        };
        if (dc) {
            watch(dc);
        } else {
            pc.addEventListener('datachannel', (ev) => {
                if (ev.channel.label === DATA_CHANNEL_LABEL) watch(ev.channel);
            });
        }
    }

    sendCandidate(call, cand, callId) {
        this.client.send(call.peer, 'ice-candidate', cand, { callId }).catch(() => {
            /* the peer left or we reconnect: the call ends through bye or ICE failure */
        });
    }

    flushLocal(call) {
        call.localReady = true;
        for (const cand of call.localQueue.splice(0)) this.sendCandidate(call, cand, call.callId);
    }

    addRemoteCandidate(call, cand) {
        if (call.pc && call.pc.remoteDescription) {
            call.pc.addIceCandidate(cand).catch(() => {
                /* a candidate for a transport that no longer exists: harmless */
            });
        } else {
            call.remoteQueue.push(cand);
        }
    }

    flushRemote(call) {
        for (const cand of call.remoteQueue.splice(0)) this.addRemoteCandidate(call, cand);
    }

    stale(call, gen) {
        return call.state === 'ended' || call.gen !== gen;
    }

    // ---- ending --------------------------------------------------------------------------

    hangup(userId, reason) {
        const call = this.calls.get(foldUserId(userId));
        if (!call) return false;
        this.end(call, { reason, sendBye: true,
                         error: new VolliError('canceled', 'the call was hung up') });
        return true;
    }

    end(call, { reason = 'hangup', sendBye = false, remote = false, error = null } = {}) {
        if (call.state === 'ended') return;
        call.state = 'ended';
        call.gen += 1;
        clearTimeout(call.timer);
        if (this.calls.get(call.peer) === call) this.calls.delete(call.peer);
        const pc = call.pc;
        if (pc) pc.close();
        if (call.media) {
            call.media.then(({ stream, owned }) => {
                if (owned && stream) for (const t of stream.getTracks()) t.stop();
            }, () => {});
        }
        const err = error ?? new VolliError(remote ? 'rejected' : 'canceled',
                                            `the call ended: ${reason}`, { reason });
        call.result.reject(err);
        call.dataChannel?.reject(new VolliError('closed', 'the call ended before the data ' +
                                                'channel opened'));
        call.ended?.resolve({ reason, remote });
        if (sendBye) {
            this.client.send(call.peer, 'bye', reason, { callId: call.callId }).catch(() => {});
        }
        this.client.emit('callended', { peer: call.peer, reason, remote, pc });
    }

    closeAll(reason) {
        for (const call of [...this.calls.values()]) this.end(call, { reason, sendBye: false });
    }
}
