/** Which interface holds the node's IP, and its subnet: the node's L2 segment as the kernel sees it. */
import { run } from '../lib/exec.js';
import { formatCidr, normalizeIP, parseCidr } from '../lib/ip.js';

export interface UplinkInfo {
  dev: string;
  address: string;
  prefixLength: number;
  subnet: string;
}

interface AddrJson {
  ifname: string;
  addr_info?: Array<{ family: string; local: string; prefixlen: number; scope?: string }>;
}

/** Pure: find nodeIP among `ip -j addr` output. */
export function findUplink(addrs: AddrJson[], nodeIP: string): UplinkInfo | null {
  const want = normalizeIP(nodeIP);
  if (!want) return null;
  for (const link of addrs) {
    for (const a of link.addr_info ?? []) {
      if (normalizeIP(a.local) !== want) continue;
      const c = parseCidr(`${a.local}/${a.prefixlen}`, { strict: false });
      if (!c) continue;
      return { dev: link.ifname, address: want, prefixLength: a.prefixlen, subnet: formatCidr(c) };
    }
  }
  return null;
}

export async function detectUplink(nodeIP: string, opts: { netns?: string } = {}): Promise<UplinkInfo | null> {
  const r = await run(['ip', ...(opts.netns ? ['-n', opts.netns] : []), '-j', 'addr', 'show'], { allowFail: true });
  if (r.code !== 0) return null;
  return findUplink(JSON.parse(r.stdout || '[]') as AddrJson[], nodeIP);
}
