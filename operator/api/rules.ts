/**
 * The CRDs' CEL rules in TypeScript, one copy: the install chart checks its options with these (zod
 * does not run CEL), IPAM uses the same block-size default, and the CLI shows pool sizes with it. The
 * CEL in the schemas (ippool.ts, bgppeer.ts, fabricconfig.ts) is what the apiserver enforces; keep the
 * two in step (test/unit/crds.test.ts and install.test.ts exercise both sides).
 */
import { parseCidr, type Family } from '../lib/ip.js';
import { RESERVED_ROUTE_PROTOCOLS } from '../routes/model.js';

/** Block prefix length when a pool does not set blockSize: /24 for IPv4, /64 for IPv6 (never shorter than the pool). */
export const DEFAULT_BLOCK_SIZE: Record<Family, number> = { 4: 24, 6: 64 };

export function effectiveBlockSize(p: { cidr: string; blockSize?: number | undefined }): number {
  const c = parseCidr(p.cidr);
  if (!c) return 0;
  return p.blockSize ?? Math.max(DEFAULT_BLOCK_SIZE[c.family], c.prefixLength);
}

/** IPPool: a network address, and a block size not shorter than the pool nor longer than the family. */
export function poolProblems(cidr: string, blockSize: number | undefined): string[] {
  const loose = parseCidr(cidr, { strict: false });
  if (!loose) return [`spec.cidr: ${JSON.stringify(cidr)} is not a CIDR such as 10.244.0.0/16 or fd00:10:244::/56`];
  if (!parseCidr(cidr)) return [`spec.cidr: ${cidr} has host bits set (use the network address)`];
  const out: string[] = [];
  if (blockSize !== undefined && blockSize < loose.prefixLength) out.push(`spec.blockSize: /${blockSize} is shorter than the pool prefix /${loose.prefixLength}`);
  if (blockSize !== undefined && loose.family === 4 && blockSize > 32) out.push(`spec.blockSize: /${blockSize} is more than 32 for an IPv4 pool`);
  return out;
}

/** BGPPeer timers: hold time 0 (no keepalives) or at least 3 s, keepalive at most a third of it. */
export function timerProblems(t: { holdTime: number; keepaliveInterval: number }): string[] {
  const out: string[] = [];
  if (t.holdTime !== 0 && t.holdTime < 3) out.push('spec.timers.holdTime must be 0 or at least 3 seconds');
  if (t.holdTime !== 0 && t.keepaliveInterval * 3 > t.holdTime) out.push('spec.timers.keepaliveInterval must be at most a third of holdTime');
  return out;
}

/** FabricConfig routeProtocol: not one the kernel or another routing daemon owns. */
export function routeProtocolProblems(p: number): string[] {
  return RESERVED_ROUTE_PROTOCOLS.includes(p) ? [`spec.routeProtocol: ${p} is reserved by the kernel or another routing daemon`] : [];
}
