/** Probes between lab pods (network namespaces): traceroute hops and the source address a receiver sees. */
import { spawn } from 'node:child_process';
import { inNs } from '../../hack/lab/lib/netns.js';
import { waitUntil } from '../../hack/lab/lib/daemon.js';
import type { LabPod } from '../../hack/lab/lab.js';

/** The hop addresses of a traceroute from a pod (IPv4 or IPv6 by the target). */
export async function traceroute(from: LabPod, to: string): Promise<string[]> {
  const r = await inNs(from.ns, ['traceroute', '-n', '-q', '1', '-w', '1', '-m', '6', to], { allowFail: true, timeoutMs: 30_000 });
  return r.stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/)[1] ?? '')
    .filter(Boolean);
}

/** Sends one UDP datagram from src to dstIP (inside pod dst) and returns the source address dst saw. */
export async function sourceSeenBy(src: LabPod, dst: LabPod, dstIP: string, port = 9999): Promise<string> {
  const v6 = dstIP.includes(':');
  const fam = v6 ? 'AF_INET6' : 'AF_INET';
  const server = spawn('ip', ['netns', 'exec', dst.ns, 'python3', '-c', `import socket;s=socket.socket(socket.${fam},socket.SOCK_DGRAM);s.bind(("${v6 ? '::' : '0.0.0.0'}",${port}));d,a=s.recvfrom(100);print(a[0],flush=True)`], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let seen = '';
  server.stdout.on('data', (d: Buffer) => (seen += d.toString()));
  try {
    await new Promise((r) => setTimeout(r, 500));
    await inNs(src.ns, ['python3', '-c', `import socket;socket.socket(socket.${fam},socket.SOCK_DGRAM).sendto(b"hi",("${dstIP}",${port}))`]);
    await waitUntil('datagram received', async () => seen.trim().length > 0, 5000);
    return seen.trim();
  } finally {
    server.kill();
  }
}
