import { z } from 'zod';
import { cel, cidr, conditions, labelSelector } from './common.js';

export const ipPoolSpec = cel(
  z.object({
    cidr: cel(cidr, [{ rule: 'self == oldSelf', message: 'cidr is immutable: create a new pool and disable this one' }]).meta({
      description: 'The pool, IPv4 or IPv6 (e.g. 10.244.0.0/16). Immutable.',
    }),
    blockSize: z
      .number()
      .int()
      .min(0)
      .max(128)
      .optional()
      .meta({ description: 'Prefix length of the block each node gets. Default /24 for IPv4, /64 for IPv6.' }),
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
