import { z } from 'zod';
import { cel, cidr, conditions, labelSelector } from './common.js';

/**
 * Address space that can never hold pods: the apiserver refuses a pool inside or around any of these.
 * The first matching entry names the reason in the message.
 */
export const UNUSABLE_RANGES: ReadonlyArray<readonly [cidr: string, what: string]> = [
  ['0.0.0.0/8', '"this network" (0.0.0.0/8)'],
  ['127.0.0.0/8', 'loopback (127.0.0.0/8)'],
  ['169.254.0.0/16', 'link-local (169.254.0.0/16)'],
  ['224.0.0.0/4', 'multicast (224.0.0.0/4)'],
  ['240.0.0.0/4', 'reserved (240.0.0.0/4, with the broadcast address 255.255.255.255)'],
  ['::/128', 'the unspecified address (::)'],
  ['::1/128', 'loopback (::1)'],
  ['::/80', 'IPv4-compatible and IPv4-mapped addresses (::/80, holding ::ffff:0:0/96)'],
  ['fe80::/10', 'link-local (fe80::/10)'],
  ['ff00::/8', 'multicast (ff00::/8)'],
];

/** Block sizes leaving the gateway (first usable address) and at least one pod: the agent's own limit. */
export const MAX_BLOCK_PREFIX = { 4: 30, 6: 126 } as const;
export const DEFAULT_BLOCK_PREFIX = { 4: 24, 6: 64 } as const;

const overlaps = (c: string) => `(cidr('${c}').containsCIDR(cidr(self)) || cidr(self).containsCIDR(cidr('${c}')))`;
// Unrolled over literals: the cost estimator bounds a literal, not a list element. Only for a well-formed
// CIDR without host bits: the rules on `cidr` before this one say what is wrong otherwise.
const usableSpace = {
  rule: `!isCIDR(self) || !(cidr(self).masked() == cidr(self)) || !(${UNUSABLE_RANGES.map(([c]) => overlaps(c)).join(' || ')})`,
  messageExpression: `'"' + self + '" is not usable pod address space: it overlaps ' + (${UNUSABLE_RANGES.map(([c, what]) => `${overlaps(c)} ? '${what}' : `).join('')}'reserved space')`,
};

const fam = 'cidr(self.cidr).ip().family()';
const len = 'cidr(self.cidr).prefixLength()';
const maxBlock = `(${fam} == 4 ? ${MAX_BLOCK_PREFIX[4]} : ${MAX_BLOCK_PREFIX[6]})`;
// A blockSize the two rules before already refuse (shorter than the pool, > 32 for IPv4) gets no second error.
const refusedBefore = `(self.blockSize < ${len} || (${fam} == 4 && self.blockSize > 32))`;
const NO_POD_ROOM = `leaves no address for pods once the gateway takes the first one: a block must be /${MAX_BLOCK_PREFIX[4]} or larger (IPv4), /${MAX_BLOCK_PREFIX[6]} or larger (IPv6)`;

export const ipPoolSpec = cel(
  z.object({
    cidr: cel(cidr, [{ rule: 'self == oldSelf', message: 'cidr is immutable: create a new pool and disable this one' }, usableSpace]).meta({
      description: 'The pool, IPv4 or IPv6 (e.g. 10.244.0.0/16). Immutable. Loopback, link-local, multicast, reserved and unspecified space is refused.',
    }),
    blockSize: z
      .number()
      .int()
      .min(0)
      .max(128)
      .optional()
      .meta({
        description:
          'Prefix length of the block each node gets. Default /24 for IPv4, /64 for IPv6 (or the pool itself when smaller). At most /30 (IPv4) or /126 (IPv6): a block holds its gateway and at least one pod.',
      }),
    nodeSelector: labelSelector.optional(),
    disabled: z.boolean().default(false).meta({ description: 'No new blocks are allocated from a disabled pool; existing ones are kept.' }),
    natOutgoing: z.boolean().optional().meta({ description: "Masquerade traffic from this pool's pods to destinations outside the cluster's pod and Service ranges to the node's address (default false: the outside sees pod addresses)." }),
  }),
  [
    {
      rule: '!has(self.blockSize) || !isCIDR(self.cidr) || self.blockSize >= cidr(self.cidr).prefixLength()',
      message: 'blockSize must not be shorter than the pool prefix',
      fieldPath: '.blockSize',
    },
    {
      rule: '!has(self.blockSize) || !isCIDR(self.cidr) || cidr(self.cidr).ip().family() == 6 || self.blockSize <= 32',
      message: 'blockSize must be at most 32 for an IPv4 pool',
      fieldPath: '.blockSize',
    },
    {
      rule: `!has(self.blockSize) || !isCIDR(self.cidr) || ${refusedBefore} || self.blockSize <= ${maxBlock}`,
      message: `this blockSize ${NO_POD_ROOM}`,
      fieldPath: '.blockSize',
    },
    {
      // Without blockSize, a pool smaller than the default block is one block itself.
      rule: `has(self.blockSize) || !isCIDR(self.cidr) || ${len} <= ${maxBlock}`,
      message: `without blockSize this pool is its own block, and it ${NO_POD_ROOM}`,
      fieldPath: '.cidr',
    },
  ],
);

export const ipPoolStatus = z.object({
  observedGeneration: z.number().int().min(0).optional(),
  conditions: conditions.optional(),
  blocksTotal: z.number().int().min(0).optional().meta({ description: 'Blocks of blockSize in the pool (saturates at 2^53-1).' }),
  blocksAllocated: z.number().int().min(0).optional(),
  blocksFree: z.number().int().min(0).optional(),
});

export type IPPoolSpec = z.infer<typeof ipPoolSpec>;
export type IPPoolStatus = z.infer<typeof ipPoolStatus>;
