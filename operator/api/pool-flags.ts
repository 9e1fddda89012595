/**
 * IPPools the apiserver accepts but flags: CEL expressions for a ValidatingAdmissionPolicy in Warn mode
 * (the install chart ships it; cdk8s/warnings.ts). `kubectl apply` prints each as "Warning: ...".
 * Each expression is true for a pool that is fine; the CRD has already refused what can never work
 * (operator/api/ippool.ts), so these only see well-formed, usable CIDRs.
 */
import { DEFAULT_BLOCK_PREFIX } from './ippool.js';

export interface PolicyCheck {
  name: string;
  expression: string;
  messageExpression: string;
}

/** Ranges set aside for documentation and benchmarking: they work, but are never meant for a real network. */
export const EXAMPLE_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '198.18.0.0/15', '2001:db8::/32'];
/** IPv4 space meant for private use: RFC 1918 and the shared (carrier-grade NAT) range. */
export const PRIVATE_V4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'];
/** IPv6 space meant for pods: unique-local and global unicast. */
export const UNICAST_V6 = ['fc00::/7', '2000::/3'];
/** Kubelet's default maxPods: a block with fewer pod addresses runs a node out of addresses first. */
export const KUBELET_MAX_PODS = 110;
/** Longest blocks holding at least KUBELET_MAX_PODS pods after network, gateway (and IPv4 broadcast): 128 addresses. */
export const MIN_FULL_BLOCK = { 4: 25, 6: 121 } as const;

const c = 'cidr(object.spec.cidr)';
const fam = `${c}.ip().family()`;
const inside = (r: string) => `cidr('${r}').containsCIDR(${c})`;
const overlaps = (r: string) => `(${inside(r)} || ${c}.containsCIDR(cidr('${r}')))`;
const anyOf = (xs: string[], f: (r: string) => string) => xs.map(f).join(' || ');
const example = `(${anyOf(EXAMPLE_RANGES, overlaps)})`;
const quoted = `'spec.cidr "' + object.spec.cidr + '"`;
const effective = `(has(object.spec.blockSize) ? object.spec.blockSize : (${c}.prefixLength() > (${fam} == 4 ? ${DEFAULT_BLOCK_PREFIX[4]} : ${DEFAULT_BLOCK_PREFIX[6]}) ? ${c}.prefixLength() : (${fam} == 4 ? ${DEFAULT_BLOCK_PREFIX[4]} : ${DEFAULT_BLOCK_PREFIX[6]})))`;

export const POOL_CHECKS: PolicyCheck[] = [
  {
    name: 'example-range',
    expression: `!isCIDR(object.spec.cidr) || !${example}`,
    messageExpression: `${quoted} overlaps space set aside for documentation or benchmarking (${EXAMPLE_RANGES.join(', ')}): fine in a lab, not on a real network'`,
  },
  {
    name: 'public-ipv4',
    expression: `!isCIDR(object.spec.cidr) || ${fam} != 4 || ${example} || ${anyOf(PRIVATE_V4, inside)}`,
    messageExpression: `${quoted} is public IPv4 space (not inside ${PRIVATE_V4.join(', ')}): pods will use these addresses, make sure they are yours'`,
  },
  {
    name: 'unusual-ipv6',
    expression: `!isCIDR(object.spec.cidr) || ${fam} != 6 || ${example} || ${anyOf(UNICAST_V6, inside)}`,
    messageExpression: `${quoted} lies outside unique-local (fc00::/7) and global unicast (2000::/3) space'`,
  },
  {
    name: 'small-blocks',
    expression: `!isCIDR(object.spec.cidr) || ${effective} <= (${fam} == 4 ? ${MIN_FULL_BLOCK[4]} : ${MIN_FULL_BLOCK[6]})`,
    messageExpression: `'spec.blockSize: a /' + string(${effective}) + ' block' + (has(object.spec.blockSize) ? '' : ' (no blockSize: the pool itself)') + ' holds fewer than ${KUBELET_MAX_PODS} pod addresses (the kubelet default maxPods): a node can run out of addresses before it runs out of pods'`,
  },
];
