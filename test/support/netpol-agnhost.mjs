// A tiny agnhost for the NetworkPolicy kernel tests, run inside pod namespaces with `ip netns exec`.
//   serve NAME               TCP and UDP echo servers on ports 80 and 81 (both families); prints "ready"
//   connect JSON [TIMEOUT]   JSON: [{host, port, proto: "tcp"|"udp"}]; prints one JSON array of booleans
//   hold HOST PORT           one long-lived TCP connection: each stdin line is sent, each echoed line printed
import net from 'node:net';
import dgram from 'node:dgram';
import readline from 'node:readline';

const [cmd, a1, a2] = process.argv.slice(2);

if (cmd === 'serve') {
  let pending = 4;
  const up = () => --pending === 0 && console.log('ready');
  for (const port of [80, 81]) {
    net
      .createServer((s) => {
        s.on('data', (d) => s.write(d));
        s.on('error', () => {});
      })
      .listen({ port, host: '::', ipv6Only: false }, up);
    const u = dgram.createSocket({ type: 'udp6', ipv6Only: false });
    u.on('message', (m, r) => u.send(m, r.port, r.address));
    u.bind(port, '::', up);
  }
} else if (cmd === 'connect') {
  const targets = JSON.parse(a1);
  const timeout = Number(a2 ?? 1000);
  const one = ({ host, port, proto }) =>
    new Promise((resolve) => {
      const done = (ok, close) => {
        clearTimeout(t);
        close();
        resolve(ok);
      };
      let t;
      if (proto === 'tcp') {
        const s = net.connect({ host, port });
        t = setTimeout(() => done(false, () => s.destroy()), timeout);
        s.on('connect', () => s.write('hi\n'));
        s.on('data', () => done(true, () => s.destroy()));
        s.on('error', () => done(false, () => s.destroy()));
      } else {
        const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
        t = setTimeout(() => done(false, () => u.close()), timeout);
        u.on('message', () => done(true, () => u.close()));
        u.on('error', () => done(false, () => u.close()));
        u.send('hi', port, host);
      }
    });
  console.log(JSON.stringify(await Promise.all(targets.map(one))));
  process.exit(0);
} else if (cmd === 'hold') {
  const s = net.connect({ host: a1, port: Number(a2) });
  s.on('connect', () => console.log('connected'));
  s.on('data', (d) => process.stdout.write(d));
  s.on('error', (e) => console.log(`error ${e.message}`));
  s.on('close', () => process.exit(0));
  readline.createInterface({ input: process.stdin }).on('line', (l) => s.write(`${l}\n`));
} else {
  console.error('usage: serve NAME | connect JSON [TIMEOUT_MS] | hold HOST PORT');
  process.exit(2);
}
