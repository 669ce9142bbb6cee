// A TCP proxy on 127.0.0.1 and a free port in front of one upstream port (Redis), so that a
// test can cut ONE node off from a service the others keep reaching. startProxy(targetPort)
// resolves with { port, freeze(), thaw(), cut(), delay(ms), close(), stats() }.
//
// - freeze(): a network partition (a black hole). Nothing is forwarded in either direction and
//   nothing is closed: bytes, a FIN or a reset arriving from either side are held, not passed
//   on, and connections accepted meanwhile are not connected upstream (the kernel completes
//   the handshake, the peer's first bytes get no answer: the closest a user-space proxy comes to
//   a SYN that is never answered). Both ends see a silent peer, which is what they must detect.
// - thaw(): the partition heals. What was held is delivered, in order, then the held FIN or
//   reset. That is what TCP does when a path comes back: segments in flight are retransmitted
//   and delivered, a connection is never left with a hole in its byte stream. Dropping held
//   bytes instead would hand each side a corrupted stream no real network produces (and
//   exercise nothing real). An endpoint that gave up during the partition has closed its
//   socket: the late bytes then meet a closed socket, as they would in reality.
// - cut(): every current connection is destroyed with a reset (RST), and every new one is reset
//   as soon as it is accepted, until thaw(). The listener stays open so the port cannot be
//   taken by another process meanwhile; to the connecting side a connect followed by a reset
//   is the same failure as a refused one.
// - delay(ms): a slow link towards the proxy's clients: every chunk from upstream is delivered
//   ms later, strictly in order (one queue per connection; a chunk never overtakes one delayed
//   before it, even after the delay is lowered or ended with 0; a FIN waits behind them; a reset
//   drops them, as an RST does). The other direction is not slowed, so a node behind the proxy
//   hears Redis later than Redis hears it, and later than its own clients may hear the others.
// - close(): stops listening and destroys every socket; resolves when the listener is closed.
//
// Buffers are bounded: while frozen at most HOLD_MAX bytes are held per direction of a
// connection; beyond that the source socket is paused, so the kernel's buffers fill and the
// sender's writes stall (TCP flow control), as on a real link. Forwarding respects the same
// backpressure (a full destination pauses its source until 'drain').
//
// Owns only the listener and the sockets it creates; it never touches another process.

import net from 'node:net';

const HOLD_MAX = 256 * 1024;

/** One direction of a proxied connection: src's bytes go to dst. */
class Direction {
    constructor(proxy, src) {
        this.proxy = proxy;
        this.src = src;
        this.dst = null; // set once the other end exists (upstream may be connected later)
        this.held = [];
        this.heldBytes = 0;
        this.endHeld = false;
        this.resetHeld = false;
        this.draining = false; // src paused until dst drains
        this.queue = []; // delayed chunks, oldest first: { chunk, due } (delivered in order)
        this.timer = null; // one timer, for the head of the queue
        this.endQueued = false; // a FIN to pass on once the queue is empty
        src.on('data', (chunk) => this.onData(chunk));
        src.on('end', () => this.onEnd());
    }

    get frozen() {
        return this.proxy.frozen || !this.dst;
    }

    onData(chunk) {
        if (this.frozen) {
            this.held.push(chunk);
            this.heldBytes += chunk.length;
            if (this.heldBytes >= HOLD_MAX) this.src.pause();
            return;
        }
        this.forward(chunk);
    }

    forward(chunk) {
        const ms = this.slowed ? this.proxy.delayMs : 0;
        if (ms > 0 || this.queue.length) {
            // Behind whatever is still delayed, whatever the delay is now.
            this.queue.push({ chunk, due: Date.now() + ms });
            this.pump();
            return;
        }
        this.write(chunk);
    }

    /** Delivers the delayed chunks that are due, strictly in order; frozen: nothing. */
    pump() {
        if (this.timer || this.frozen) return;
        while (this.queue.length && this.queue[0].due <= Date.now()) {
            this.write(this.queue.shift().chunk);
        }
        if (this.queue.length) {
            this.timer = setTimeout(() => {
                this.timer = null;
                this.pump();
            }, Math.max(1, this.queue[0].due - Date.now()));
        } else if (this.endQueued) {
            this.endQueued = false;
            this.passEnd();
        }
    }

    write(chunk) {
        if (this.dst.destroyed) return;
        if (!this.dst.write(chunk) && !this.draining) {
            this.draining = true;
            this.src.pause();
            this.dst.once('drain', () => {
                this.draining = false;
                if (!this.frozen && !this.src.destroyed) this.src.resume();
            });
        }
    }

    onEnd() {
        if (this.frozen) {
            this.endHeld = true;
            return;
        }
        this.passEnd();
    }

    passEnd() {
        if (this.queue.length) {
            this.endQueued = true; // behind the delayed chunks
            return;
        }
        if (!this.dst.destroyed) this.dst.end();
    }

    /** src was reset or failed: the other end gets a reset too (now, or at thaw). */
    onReset() {
        if (this.frozen) {
            this.resetHeld = true;
            return;
        }
        if (this.dst && !this.dst.destroyed) this.dst.resetAndDestroy();
    }

    /** After the partition: what was held, in order, then the held FIN or reset. */
    flush() {
        this.pump(); // delayed before the partition: first
        const chunks = this.held;
        this.held = [];
        this.heldBytes = 0;
        for (const chunk of chunks) this.forward(chunk);
        if (this.resetHeld) {
            this.resetHeld = false;
            if (!this.dst.destroyed) this.dst.resetAndDestroy();
            return;
        }
        if (this.endHeld) {
            this.endHeld = false;
            this.passEnd();
        }
        if (!this.src.destroyed && !this.draining) this.src.resume();
    }
}

class Connection {
    constructor(proxy, client) {
        this.proxy = proxy;
        this.client = client;
        this.upstream = null;
        this.gone = false;
        this.up = new Direction(proxy, client); // client -> upstream
        this.down = null; // upstream -> client, once connected
        client.on('error', () => {
            /* the 'close' handler below sees hadError */
        });
        client.on('close', (hadError) => {
            if (hadError) this.up.onReset();
            this.maybeGone();
        });
        if (!proxy.frozen) this.connectUpstream();
    }

    connectUpstream() {
        const u = net.connect({ host: '127.0.0.1', port: this.proxy.targetPort,
                                allowHalfOpen: true });
        this.upstream = u;
        u.setNoDelay(true);
        this.down = new Direction(this.proxy, u);
        this.down.slowed = true;
        this.down.dst = this.client;
        this.up.dst = u;
        u.on('error', () => {
            /* see 'close' */
        });
        u.on('close', (hadError) => {
            if (hadError) this.down.onReset();
            this.maybeGone();
        });
        // Whatever the client sent before the upstream existed goes first.
        if (!this.proxy.frozen) this.up.flush();
    }

    /** Thaw: connect a connection accepted during the freeze, deliver what was held. */
    thaw() {
        if (!this.upstream) {
            // The client gave up before the partition healed: its connection attempt is lost.
            if (this.client.destroyed) {
                this.maybeGone();
                return;
            }
            this.connectUpstream();
            return;
        }
        this.up.flush();
        this.down.flush();
    }

    reset() {
        if (!this.client.destroyed) this.client.resetAndDestroy();
        if (this.upstream && !this.upstream.destroyed) this.upstream.resetAndDestroy();
        this.up.held = [];
        if (this.down) this.down.held = [];
        this.maybeGone();
    }

    maybeGone() {
        if (this.gone) return;
        // Held FINs and resets must survive until the thaw: keep the entry while anything is
        // held for a socket that is still open.
        const clientDone = this.client.destroyed;
        const upDone = !this.upstream || this.upstream.destroyed;
        if (!clientDone || !upDone) return;
        this.gone = true;
        this.proxy.conns.delete(this);
    }

    heldBytes() {
        return this.up.heldBytes + (this.down ? this.down.heldBytes : 0);
    }
}

class Proxy {
    constructor(targetPort) {
        this.targetPort = targetPort;
        this.frozen = false;
        this.refusing = false;
        this.delayMs = 0;
        this.conns = new Set();
        this.accepted = 0;
        this.refused = 0;
        this.server = net.createServer({ allowHalfOpen: true },
                                       (sock) => this.onConnection(sock));
    }

    onConnection(sock) {
        this.accepted += 1;
        sock.setNoDelay(true);
        if (this.refusing) {
            this.refused += 1;
            sock.on('error', () => {});
            sock.resetAndDestroy();
            return;
        }
        this.conns.add(new Connection(this, sock));
    }

    listen() {
        return new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen(0, '127.0.0.1', () => {
                this.server.off('error', reject);
                this.port = this.server.address().port;
                resolve();
            });
        });
    }

    freeze() {
        this.frozen = true;
    }

    delay(ms) {
        this.delayMs = ms;
    }

    thaw() {
        this.frozen = false;
        this.refusing = false;
        for (const c of [...this.conns]) c.thaw();
        for (const c of [...this.conns]) c.maybeGone();
    }

    cut() {
        this.refusing = true;
        this.frozen = false;
        for (const c of [...this.conns]) c.reset();
        this.conns.clear();
    }

    close() {
        this.refusing = true;
        for (const c of [...this.conns]) {
            c.client.destroy();
            c.upstream?.destroy();
        }
        this.conns.clear();
        return new Promise((resolve) => this.server.close(() => resolve()));
    }

    stats() {
        let held = 0;
        for (const c of this.conns) held += c.heldBytes();
        return { accepted: this.accepted, refused: this.refused, open: this.conns.size,
                 heldBytes: held, frozen: this.frozen, refusing: this.refusing };
    }
}

/**
 * Starts a proxy on 127.0.0.1 and a free port forwarding to 127.0.0.1:targetPort. Resolves with
 * { port, freeze(), thaw(), cut(), close(), stats() } (see the top of the file).
 */
export async function startProxy(targetPort) {
    const p = new Proxy(targetPort);
    await p.listen();
    return {
        port: p.port,
        freeze: () => p.freeze(),
        thaw: () => p.thaw(),
        cut: () => p.cut(),
        delay: (ms) => p.delay(ms),
        close: () => p.close(),
        stats: () => p.stats(),
    };
}
