// Runs the PeerJS server (npm `peer`, pinned in bench/peers/package.json) on loopback for the
// benchmark, with its stock settings except:
//   concurrent_limit: 1,000,000 instead of 5,000, so the idle-connection scenario measures
//   memory rather than the default cap.
// Its protocol: a WebSocket at /peerjs?key=peerjs&id=ID&token=T; the server sends {"type":"OPEN"};
// {"type":"OFFER","dst":ID,"payload":{...}} is relayed as {"type","src","dst","payload"}.
//
//   node bench/peers/peerjs-server.mjs [--host 127.0.0.1] [--port 0]
// prints {"msg":"listening","host":...,"port":...} on stderr once it accepts connections.

import { PeerServer } from 'peer';

const args = process.argv.slice(2);
function opt(name, def) {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const host = opt('--host', '127.0.0.1');
const port = Number(opt('--port', '0'));
if (!host.startsWith('127.') && host !== '::1') {
    console.error('peerjs-server: listens on loopback only');
    process.exit(2);
}

const peer = PeerServer({ host, port, path: '/', key: 'peerjs', concurrent_limit: 1000000 }, (server) => {
    const a = server.address();
    console.error(JSON.stringify({ msg: 'listening', host: a.address, port: a.port }));
    for (const sig of ['SIGTERM', 'SIGINT']) {
        process.on(sig, () => {
            server.closeAllConnections?.();
            server.close(() => process.exit(0));
            setTimeout(() => process.exit(0), 2000).unref();
        });
    }
});
peer.on('error', (e) => console.error(JSON.stringify({ msg: 'error', error: String(e) })));
