/**
 * Which interface holds the node's IP, and its subnet: the node's L2 segment as the kernel sees it
 * (`ip -j addr show`). The agent reports that subnet so the controller can plan direct (host-gw) routes
 * between nodes of one segment. Works for v4 and v6 node IPs.
 */
import { run } from '../lib/exec.js';
import { formatCidr, normalizeIP, parseCidr } from '../lib/ip.js';

export interface UplinkInfo {
  dev: string;
  address: string;
  prefixLength: number;
  /** The subnet of that address, canonical CIDR (host bits clear). */
  subnet: string;
}

export interface LinkAddress {
  family: 4 | 6;
  address: string;
  prefixLength: number;
  subnet: string;
  scope: string;
  /** Still in duplicate address detection, or DAD failed: not usable yet. */
  tentative: boolean;
}

interface AddrInfoJson {
  family: string;
  local: string;
  prefixlen: number;
  scope?: string;
  tentative?: boolean;
  dadfailed?: boolean;
}

interface AddrJson {
  ifname: string;
  addr_info?: AddrInfoJson[];
}

function toLinkAddress(a: AddrInfoJson): LinkAddress | null {
  if (a.family !== 'inet' && a.family !== 'inet6') return null;
  const address = normalizeIP(a.local);
  const c = parseCidr(`${a.local}/${a.prefixlen}`, { strict: false });
  if (!address || !c) return null;
  return {
    family: a.family === 'inet' ? 4 : 6,
    address,
    prefixLength: a.prefixlen,
    subnet: formatCidr(c),
    scope: a.scope ?? 'global',
    tentative: !!(a.tentative || a.dadfailed),
  };
}

/** Pure: find nodeIP among `ip -j addr` output. */
export function findUplink(addrs: AddrJson[], nodeIP: string): UplinkInfo | null {
  const want = normalizeIP(nodeIP);
  if (!want) return null;
  for (const link of addrs) {
    for (const raw of link.addr_info ?? []) {
      const a = toLinkAddress(raw);
      if (a?.address !== want) continue;
      return { dev: link.ifname, address: want, prefixLength: a.prefixLength, subnet: a.subnet };
    }
  }
  return null;
}

const ipArgs = (netns?: string) => ['ip', ...(netns ? ['-n', netns] : []), '-j'];

/** The interface holding nodeIP and its subnet, or null when no interface has it (or ip fails). */
export async function detectUplink(nodeIP: string, opts: { netns?: string } = {}): Promise<UplinkInfo | null> {
  const r = await run([...ipArgs(opts.netns), 'addr', 'show'], { allowFail: true });
  if (r.code !== 0) return null;
  return findUplink(JSON.parse(r.stdout.trim() || '[]') as AddrJson[], nodeIP);
}

/** Every v4/v6 address on one interface (throws when the interface does not exist). */
export async function addressesOn(dev: string, opts: { netns?: string } = {}): Promise<LinkAddress[]> {
  const r = await run([...ipArgs(opts.netns), 'addr', 'show', 'dev', dev]);
  const links = JSON.parse(r.stdout.trim() || '[]') as AddrJson[];
  return links.flatMap((l) => (l.addr_info ?? []).map(toLinkAddress).filter((a): a is LinkAddress => a !== null));
}
