// Volli demo app: sign in with a user id (the SDK keeps its key in IndexedDB), keep a contact
// list with live presence, chat over a WebRTC data channel, and make audio/video calls.
// Uses only the public SDK API from /sdk/volli.js. Contacts and the last id and server URL
// are kept in localStorage; messages live in memory only. All text is set with textContent.

import { Volli, isValidUserId, foldUserId } from '/sdk/volli.js';

const $ = (id) => document.getElementById(id);
const store = {
    get(key, fallback) {
        try {
            const v = localStorage.getItem(`volli.demo.${key}`);
            return v === null ? fallback : JSON.parse(v);
        } catch {
            return fallback;
        }
    },
    set(key, value) {
        try {
            localStorage.setItem(`volli.demo.${key}`, JSON.stringify(value));
        } catch {
            /* private mode: nothing is remembered */
        }
    },
};

const state = {
    client: null,
    me: null,
    contacts: new Map(), // id -> { online, messages: [{mine, text, at}], unread, unsubscribe }
    selected: null,
    links: new Map(), // peer -> { pc, dc, media: {audio, video}, stream, connected }
    dialing: new Map(), // peer -> Promise of the data channel being opened for chat
    ringing: null, // the IncomingCall shown in the dialog
    off: [],
};

// ---- small view helpers ------------------------------------------------------------------

function show(el, on = true) {
    el.hidden = !on;
}

function initials(id) {
    const parts = id.split(/[._+@-]+/).filter(Boolean);
    const s = parts.length > 1 ? parts[0][0] + parts[1][0] : id.slice(0, 2);
    return s.toUpperCase();
}

function hue(id) {
    let h = 0;
    for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) % 360;
    return h;
}

function paintAvatar(el, id) {
    el.textContent = initials(id);
    el.style.background = `hsl(${hue(id)} 55% 88%)`;
    el.style.color = `hsl(${hue(id)} 45% 30%)`;
}

function banner(text, kind = 'error') {
    $('banner-text').textContent = text;
    $('banner').className = `banner banner-${kind}`;
    show($('banner'));
    clearTimeout(banner.timer);
    if (kind !== 'error') banner.timer = setTimeout(() => show($('banner'), false), 6000);
}

function friendly(err, peer) {
    switch (err && err.code) {
    case 'unreachable':
        return 'Cannot reach the server. Check your connection, or the server URL in ' +
            'Server settings.';
    case 'key_mismatch':
        return 'This user id is already taken by someone else (it is bound to another key ' +
            'than the one kept in this browser). Choose another id.';
    case 'invalid_user_id':
        return 'That user id is not valid: use 1 to 128 letters, digits or . _ + @ -';
    case 'unsupported':
        return 'This browser cannot create the Ed25519 key Volli needs. Try a current ' +
            'Chrome, Edge, Firefox or Safari.';
    case 'peer_offline':
        return `${peer || 'Your contact'} is offline right now.`;
    case 'rejected':
        if (err.reason && err.reason !== 'declined') return `${peer} declined (${err.reason}).`;
        return `${peer} declined.`;
    case 'timeout':
        return peer ? `${peer} did not answer.` : 'The server did not answer in time.';
    case 'media':
        return 'Camera or microphone unavailable. Check the browser permissions.';
    case 'not_connected':
        return 'Not connected to the server; reconnecting…';
    case 'replaced':
        return 'You signed in with this id somewhere else, so this page was signed out.';
    default:
        return (err && err.message) || 'Something went wrong.';
    }
}

// ---- sign in -----------------------------------------------------------------------------

function initSignIn() {
    const defaultUrl = Volli.defaultServer() || 'ws://localhost:7880/';
    $('user-id').value = store.get('lastUser', '');
    $('server-url').value = store.get('server', '') || defaultUrl;
    $('server-url').placeholder = defaultUrl;
    $('signin-form').addEventListener('submit', (e) => {
        e.preventDefault();
        signIn();
    });
}

function signInError(text) {
    $('signin-error').textContent = text;
    show($('signin-error'), !!text);
}

async function signIn() {
    const userId = $('user-id').value.trim();
    const server = $('server-url').value.trim() || Volli.defaultServer();
    if (!isValidUserId(userId)) {
        signInError(userId ? friendly({ code: 'invalid_user_id' }) : 'Enter a user id.');
        $('user-id').focus();
        return;
    }
    if (!/^wss?:\/\/[^/]+/i.test(server)) {
        signInError('The server URL must start with ws:// or wss://');
        $('settings').open = true;
        $('server-url').focus();
        return;
    }
    signInError('');
    const btn = $('signin-btn');
    btn.disabled = true;
    btn.textContent = 'Connecting…';
    try {
        const client = await Volli.connect({ servers: [server], userId });
        store.set('lastUser', userId);
        store.set('server', server === Volli.defaultServer() ? '' : server);
        startSession(client);
    } catch (err) {
        signInError(friendly(err));
        if (err.code === 'unreachable') $('settings').open = true;
    } finally {
        btn.disabled = false;
        btn.textContent = 'Sign in';
    }
}

function signOut(message) {
    for (const off of state.off.splice(0)) off();
    for (const peer of [...state.links.keys()]) dropLink(peer);
    if (state.client) state.client.close();
    state.client = null;
    state.contacts.clear();
    state.selected = null;
    closeIncoming();
    $('contact-list').replaceChildren();
    show($('screen-main'), false);
    show($('screen-signin'));
    signInError(message || '');
}

// ---- session -----------------------------------------------------------------------------

function setStatus(kind, text) {
    const pill = $('status-pill');
    pill.className = `pill ${kind}`;
    pill.textContent = text;
}

function startSession(client) {
    state.client = client;
    state.me = client.userId;
    $('me-id').textContent = client.userId;
    setStatus('online', 'Online');
    show($('screen-signin'), false);
    show($('screen-main'));
    show($('banner'), false);
    state.off.push(
        client.on('disconnected', () => setStatus('warn', 'Reconnecting…')),
        client.on('registered', () => setStatus('online', 'Online')),
        client.on('closed', () => {
            if (state.client === client && !state.closing) signOut(friendly(state.lastError));
        }),
        client.on('error', (e) => {
            state.lastError = e.error;
        }),
        client.on('callended', (e) => onCallEnded(e)),
    );
    client.onIncomingCall = (inc) => onIncoming(inc);
    for (const id of store.get(`contacts.${state.me}`, [])) addContact(id, { save: false });
    renderContacts();
    selectContact(null);
}

// ---- contacts ----------------------------------------------------------------------------

function saveContacts() {
    store.set(`contacts.${state.me}`, [...state.contacts.keys()]);
}

function addContact(rawId, { save = true } = {}) {
    const id = foldUserId(rawId.trim());
    if (!isValidUserId(id)) return 'That is not a valid user id.';
    if (id === state.me) return 'That is you.';
    if (state.contacts.has(id)) return null;
    const c = { online: undefined, messages: [], unread: 0, unsubscribe: null };
    state.contacts.set(id, c);
    state.client.subscribe([id], (p) => {
        c.online = p.online;
        renderContacts();
        if (state.selected === id) renderConversationHead();
    }).then((unsub) => {
        if (state.contacts.get(id) === c) c.unsubscribe = unsub;
        else unsub();
    }, (err) => banner(`Cannot follow ${id}: ${friendly(err)}`));
    if (save) saveContacts();
    renderContacts();
    return null;
}

function removeContact(id) {
    const c = state.contacts.get(id);
    if (!c) return;
    c.unsubscribe?.();
    state.client.hangup(id);
    state.contacts.delete(id);
    saveContacts();
    if (state.selected === id) selectContact(null);
    renderContacts();
}

function renderContacts() {
    const list = $('contact-list');
    const ids = [...state.contacts.keys()].sort((a, b) => {
        const oa = state.contacts.get(a).online ? 0 : 1;
        const ob = state.contacts.get(b).online ? 0 : 1;
        return oa - ob || a.localeCompare(b);
    });
    list.replaceChildren(...ids.map((id) => {
        const c = state.contacts.get(id);
        const li = document.createElement('li');
        li.className = `contact${state.selected === id ? ' selected' : ''}`;
        li.dataset.id = id;
        const open = document.createElement('button');
        open.type = 'button';
        open.className = 'contact-open';
        const av = document.createElement('span');
        av.className = 'avatar';
        paintAvatar(av, id);
        const dot = document.createElement('span');
        dot.className = `dot ${c.online ? 'on' : c.online === false ? 'off' : 'unknown'}`;
        av.append(dot);
        const text = document.createElement('span');
        text.className = 'contact-text';
        const name = document.createElement('span');
        name.className = 'contact-name';
        name.textContent = id;
        const sub = document.createElement('span');
        sub.className = 'contact-sub';
        const link = state.links.get(id);
        sub.textContent = link?.media ? 'In a call' : c.online ? 'Online'
            : c.online === false ? 'Offline' : '…';
        text.append(name, sub);
        open.append(av, text);
        if (c.unread) {
            const badge = document.createElement('span');
            badge.className = 'badge';
            badge.textContent = String(c.unread);
            badge.setAttribute('aria-label', `${c.unread} unread`);
            open.append(badge);
        }
        open.addEventListener('click', () => selectContact(id));
        const del = document.createElement('button');
        del.type = 'button';
        del.className = 'icon-btn remove';
        del.setAttribute('aria-label', `Remove ${id}`);
        del.textContent = '×';
        del.addEventListener('click', () => removeContact(id));
        li.append(open, del);
        return li;
    }));
    show($('contacts-empty'), ids.length === 0);
}

function selectContact(id) {
    state.selected = id;
    $('layout').classList.toggle('show-conv', !!id);
    show($('conv-empty'), !id);
    show($('conv'), !!id);
    if (id) {
        state.contacts.get(id).unread = 0;
        renderConversationHead();
        renderMessages();
        renderCallView();
        $('chat-input').focus({ preventScroll: true });
    }
    renderContacts();
}

function renderConversationHead() {
    const id = state.selected;
    const c = state.contacts.get(id);
    $('peer-name').textContent = id;
    paintAvatar($('peer-avatar'), id);
    const link = state.links.get(id);
    const presence = c.online ? 'Online' : c.online === false ? 'Offline' : '';
    $('peer-status').textContent = link?.dc ? `${presence || 'Online'} · connected` : presence;
    $('peer-status').className = `peer-status ${c.online ? 'on' : ''}`;
    const busy = !!link?.media;
    show($('audio-call'), !busy);
    show($('video-call'), !busy);
}

// ---- chat --------------------------------------------------------------------------------

function renderMessages() {
    const c = state.contacts.get(state.selected);
    const ol = $('messages');
    ol.replaceChildren(...c.messages.map((m) => {
        const li = document.createElement('li');
        li.className = `msg ${m.mine ? 'mine' : m.system ? 'system' : 'theirs'}`;
        const body = document.createElement('span');
        body.className = 'msg-text';
        body.textContent = m.text;
        li.append(body);
        if (!m.system) {
            const time = document.createElement('time');
            time.textContent = new Date(m.at).toLocaleTimeString([], { hour: '2-digit',
                                                                       minute: '2-digit' });
            li.append(time);
        }
        return li;
    }));
    if (!c.messages.length) {
        const li = document.createElement('li');
        li.className = 'msg system';
        li.textContent = 'Messages go straight to your contact over an encrypted peer-to-peer ' +
            'channel. They are not stored anywhere.';
        ol.append(li);
    }
    ol.scrollTop = ol.scrollHeight;
}

function pushMessage(peer, msg) {
    const c = state.contacts.get(peer);
    if (!c) return;
    c.messages.push({ at: Date.now(), ...msg });
    if (state.selected === peer) renderMessages();
    else if (!msg.mine && !msg.system) c.unread += 1;
    renderContacts();
}

function attachChannel(peer, dc) {
    const link = state.links.get(peer);
    if (!link) return;
    link.dc = dc;
    dc.addEventListener('message', (e) => {
        let m;
        try {
            m = JSON.parse(e.data);
        } catch {
            return;
        }
        if (m && m.type === 'chat' && typeof m.text === 'string') {
            pushMessage(peer, { mine: false, text: m.text.slice(0, 4000) });
        }
    });
    dc.addEventListener('close', () => {
        if (link.dc === dc) link.dc = null;
        if (state.selected === peer) renderConversationHead();
    });
    if (state.selected === peer) renderConversationHead();
}

// One connection per contact carries the chat; calls replace it with one that also has media.
function adopt(pc, media, stream = null) {
    const peer = pc.volliPeer;
    const link = { pc, dc: null, media, stream, connected: false };
    state.links.set(peer, link);
    if (!state.contacts.has(peer)) addContact(peer);
    pc.volliDataChannel?.then((dc) => attachChannel(peer, dc), () => {});
    pc.addEventListener('connectionstatechange', () => {
        link.connected = pc.connectionState === 'connected';
        if (state.selected === peer) renderCallView();
    });
    if (state.selected === peer) {
        renderConversationHead();
        renderCallView();
    }
    renderContacts();
    return link;
}

function channelTo(peer) {
    const link = state.links.get(peer);
    if (link?.dc && link.dc.readyState === 'open') return Promise.resolve(link.dc);
    if (link?.pc?.volliDataChannel) return link.pc.volliDataChannel;
    // Messages typed while the channel opens share one connection attempt.
    let p = state.dialing.get(peer);
    if (!p) {
        p = state.client.call(peer, { data: true }).then((pc) => {
            adopt(pc, null);
            return pc.volliDataChannel;
        }).finally(() => state.dialing.delete(peer));
        state.dialing.set(peer, p);
    }
    return p;
}

async function sendChat(e) {
    e.preventDefault();
    const peer = state.selected;
    const input = $('chat-input');
    const text = input.value.trim();
    if (!peer || !text) return;
    const c = state.contacts.get(peer);
    if (c.online === false && !state.links.get(peer)?.dc) {
        banner(friendly({ code: 'peer_offline' }, peer));
        return;
    }
    $('chat-send').disabled = true;
    try {
        const dc = await channelTo(peer);
        dc.send(JSON.stringify({ type: 'chat', text }));
        input.value = '';
        pushMessage(peer, { mine: true, text });
    } catch (err) {
        banner(friendly(err, peer));
    } finally {
        $('chat-send').disabled = false;
        input.focus({ preventScroll: true });
    }
}

// ---- calls -------------------------------------------------------------------------------

async function localMedia(video) {
    return navigator.mediaDevices.getUserMedia({ audio: true, video });
}

function stopStream(stream) {
    if (stream) for (const t of stream.getTracks()) t.stop();
}

async function startCall(video) {
    const peer = state.selected;
    if (!peer) return;
    if (state.contacts.get(peer).online === false) {
        banner(friendly({ code: 'peer_offline' }, peer));
        return;
    }
    let stream;
    try {
        stream = await localMedia(video);
    } catch {
        banner(friendly({ code: 'media' }));
        return;
    }
    const pending = { pc: null, dc: null, media: { audio: true, video }, stream, connected: false,
                      calling: true };
    state.links.set(peer, pending);
    renderCallView();
    renderConversationHead();
    try {
        const pc = await state.client.call(peer, { stream, audio: true, video, data: true });
        if (state.links.get(peer) !== pending) return;
        adopt(pc, { audio: true, video }, stream);
    } catch (err) {
        if (state.links.get(peer) === pending) state.links.delete(peer);
        stopStream(stream);
        if (err.code !== 'canceled') banner(friendly(err, peer));
        if (state.selected === peer) {
            renderCallView();
            renderConversationHead();
        }
    }
}

function onIncoming(inc) {
    if (!inc.audio && !inc.video) {
        // A chat connection: contacts and newcomers alike may open one.
        inc.accept({ audio: false, video: false }).then((pc) => adopt(pc, null), () => {});
        return;
    }
    if (state.ringing) state.ringing.reject('busy');
    state.ringing = inc;
    if (!state.contacts.has(inc.from)) addContact(inc.from);
    paintAvatar($('incoming-avatar'), inc.from);
    $('incoming-title').textContent = `${inc.from} is calling`;
    $('incoming-kind').textContent = inc.video ? 'Video call' : 'Audio call';
    const dlg = $('incoming');
    if (!dlg.open) dlg.showModal();
}

function closeIncoming() {
    state.ringing = null;
    const dlg = $('incoming');
    if (dlg.open) dlg.close();
}

async function acceptIncoming() {
    const inc = state.ringing;
    if (!inc) return;
    closeIncoming();
    selectContact(inc.from);
    let stream;
    try {
        stream = await localMedia(inc.video);
    } catch {
        inc.reject('media-error');
        banner(friendly({ code: 'media' }));
        return;
    }
    try {
        const pc = await inc.accept({ stream });
        adopt(pc, { audio: true, video: inc.video }, stream);
    } catch (err) {
        stopStream(stream);
        banner(friendly(err, inc.from));
    }
}

function declineIncoming() {
    const inc = state.ringing;
    closeIncoming();
    inc?.reject('declined');
}

function dropLink(peer) {
    const link = state.links.get(peer);
    if (!link) return;
    state.links.delete(peer);
    stopStream(link.stream);
}

function onCallEnded(e) {
    if (state.ringing && state.ringing.from === e.peer) {
        closeIncoming();
        if (e.remote) banner(`Missed call from ${e.peer}.`, 'info');
    }
    const link = state.links.get(e.peer);
    // A call still being placed (no pc yet) is cleaned up by startCall when call() rejects.
    if (link && link.pc && link.pc === e.pc) {
        const hadMedia = !!link.media;
        dropLink(e.peer);
        if (hadMedia && e.remote && e.reason !== 'replaced') {
            pushMessage(e.peer, { system: true, text: `Call ended by ${e.peer}.` });
        }
    }
    if (state.selected === e.peer) {
        renderCallView();
        renderConversationHead();
    }
    renderContacts();
}

function hangup() {
    const peer = state.selected;
    const link = state.links.get(peer);
    if (!peer || !link) return;
    state.client.hangup(peer);
    dropLink(peer);
    pushMessage(peer, { system: true, text: 'Call ended.' });
    renderCallView();
    renderConversationHead();
}

function toggleTracks(kind, button, onLabel, offLabel) {
    const link = state.links.get(state.selected);
    const tracks = link?.stream?.getTracks().filter((t) => t.kind === kind) ?? [];
    if (!tracks.length) return;
    const enable = !tracks[0].enabled;
    for (const t of tracks) t.enabled = enable;
    button.textContent = enable ? onLabel : offLabel;
    button.setAttribute('aria-pressed', String(!enable));
}

function playVideo(el, stream) {
    if (el.srcObject !== stream) {
        el.srcObject = stream;
        if (stream) el.play().catch(() => {}); // autoplay may wait for a click; no error then
    }
}

function renderCallView() {
    const peer = state.selected;
    const link = peer && state.links.get(peer);
    const inCall = !!link?.media;
    show($('call-view'), inCall);
    if (!inCall) {
        playVideo($('remote-video'), null);
        playVideo($('local-video'), null);
        $('mute').textContent = 'Mute';
        $('camera').textContent = 'Camera off';
        return;
    }
    const video = link.media.video;
    $('call-view').classList.toggle('audio-only', !video);
    playVideo($('local-video'), video ? link.stream : null);
    show($('local-video'), video);
    playVideo($('remote-video'), link.pc ? link.pc.volliRemoteStream : null);
    paintAvatar($('remote-avatar'), peer);
    show($('remote-avatar'), !video || !link.connected);
    show($('camera'), video);
    $('call-state').textContent = !link.pc ? `Calling ${peer}…`
        : link.connected ? (video ? 'Video call' : 'Audio call') : 'Connecting…';
}

// ---- wiring ------------------------------------------------------------------------------

function init() {
    initSignIn();
    $('signout').addEventListener('click', () => {
        state.closing = true;
        signOut('');
        state.closing = false;
    });
    $('banner-close').addEventListener('click', () => show($('banner'), false));
    $('add-contact').addEventListener('submit', (e) => {
        e.preventDefault();
        const input = $('contact-id');
        const err = input.value.trim() ? addContact(input.value) : 'Enter a user id.';
        $('contact-error').textContent = err || '';
        show($('contact-error'), !!err);
        if (!err) input.value = '';
    });
    $('back').addEventListener('click', () => selectContact(null));
    $('chat-form').addEventListener('submit', sendChat);
    $('audio-call').addEventListener('click', () => startCall(false));
    $('video-call').addEventListener('click', () => startCall(true));
    $('hangup').addEventListener('click', hangup);
    $('mute').addEventListener('click', (e) => toggleTracks('audio', e.currentTarget, 'Mute',
                                                            'Unmute'));
    $('camera').addEventListener('click', (e) => toggleTracks('video', e.currentTarget,
                                                              'Camera off', 'Camera on'));
    $('accept').addEventListener('click', acceptIncoming);
    $('decline').addEventListener('click', declineIncoming);
    $('incoming').addEventListener('cancel', (e) => {
        e.preventDefault(); // Escape must not silently leave the caller ringing
        declineIncoming();
    });
    window.addEventListener('pagehide', () => state.client?.close());
}

init();
