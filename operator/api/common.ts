import { z } from 'zod';
import { cel, listMap } from './cel.js';
import { badLabelKey, labelKey, labelKeysOfMap, labelValue } from './names.js';

export const GROUP = 'podfabric.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** REST path prefix of the podfabric kinds. */
export const API_PATH = `/apis/${API_VERSION}`;

export { cel, listMap, type CelRule } from './cel.js';

// The apiserver's CEL ip/cidr libraries refuse IPv4-mapped IPv6 (::ffff:a.b.c.d): say so rather than "not an address".
const mapped = (expected: string) => `self.matches('(?i)^(::ffff:|(0+:){5}ffff:)') ? 'IPv4-mapped IPv6 ("' + self + '") is not accepted: write the IPv4 form' : '${expected}'`;
export const ipAddress = cel(z.string().max(45), [{ rule: 'isIP(self)', messageExpression: mapped('must be an IPv4 or IPv6 address') }]);
export const cidr = cel(z.string().max(49), [
  { rule: 'isCIDR(self)', messageExpression: mapped('must be a CIDR such as 10.244.0.0/16 or fd00:10:244::/56') },
  { rule: '!isCIDR(self) || cidr(self).masked() == cidr(self)', message: 'must not have host bits set (use the network address)' },
]);
export const asn = z.number().int().min(1).max(4294967295).meta({ description: 'Autonomous system number, 1-4294967295 (4-byte ASNs allowed).' });

/** metav1.LabelSelector. An empty selector selects everything. */
export const labelSelector = z
  .object({
    matchLabels: cel(
      z
        .record(z.string(), labelValue)
        .refine((m) => badLabelKey(m) === undefined, { message: 'every key must be a label key' })
        .meta({ maxProperties: 64 }),
      [labelKeysOfMap],
    ).optional(),
    matchExpressions: z
      .array(
        cel(
          z.object({
            key: labelKey,
            operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
            values: z.array(labelValue).max(64).optional(),
          }),
          [
            {
              rule: "(self.operator in ['In', 'NotIn']) ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
              message: 'In and NotIn need a non-empty values list; Exists and DoesNotExist take no values',
            },
          ],
        ),
      )
      .max(32)
      .optional(),
  })
  .meta({ description: 'A standard Kubernetes label selector. Empty or absent selects every node.' });
export type LabelSelector = z.infer<typeof labelSelector>;

/** metav1.Condition */
export const condition = z.object({
  type: z.string().min(1).max(316),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.number().int().min(0).optional(),
  lastTransitionTime: z.iso.datetime(),
  reason: z.string().min(1).max(1024).regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  message: z.string().max(32768),
});
export type Condition = z.infer<typeof condition>;
export const conditions = listMap(z.array(condition).max(32), ['type']);

export const objectMeta = z
  .object({
    name: z.string(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.number().optional(),
    resourceVersion: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    finalizers: z.array(z.string()).optional(),
    deletionTimestamp: z.string().optional(),
    creationTimestamp: z.string().optional(),
  })
  .loose();
export type ObjectMeta = z.infer<typeof objectMeta>;
