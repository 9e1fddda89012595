/**
 * L2Segment: the host-gw routes of one L2 segment, per address family. The controller writes one per
 * segment (a `podfabric.io/l2-segment` label value or a detected subnet) with at least one route; each
 * agent watches only the segments its NodeFabric names (spec.routing.segments) and installs every route
 * but its own node's. A node joining or leaving a rack is then one write of the rack's object, not a
 * rewrite of every rack member's NodeFabric, and each NodeFabric (written by its agent on every status
 * change) stays the same small size however large its segment is.
 */
import { z } from 'zod';
import { cidr, ipAddress } from './common.js';
import { objectName } from './names.js';
import type { KindDef } from './kinds.js';

/** Direct routes one segment may hold; beyond it the rest go through the ToR (spec.omitted counts them). */
export const MAX_SEGMENT_ROUTES = 2048;

export const segmentRoute = z.object({
  destination: cidr.meta({ description: "A member node's pod CIDR." }),
  via: ipAddress.meta({ description: "That node's IP on the segment." }),
  node: objectName,
});

export const l2SegmentSpec = z.object({
  key: z.string().min(1).max(200).meta({ description: 'The segment: `label:<value of the segment label>` or `subnet:<the members\' uplink subnet>`.' }),
  family: z.union([z.literal(4), z.literal(6)]).meta({ description: 'The address family of every route here.' }),
  reason: z.enum(['SameSubnet', 'SegmentLabel']).meta({ description: 'Why the members are adjacent: they share the subnet, or they carry the same segment label (FabricConfig hostRoutes.segmentLabel).' }),
  // Atomic: only the controller writes it, always whole (PUT); a list-map would add a managedFields entry per route.
  routes: z
    .array(segmentRoute)
    .max(MAX_SEGMENT_ROUTES)
    .meta({ 'x-kubernetes-list-type': 'atomic', description: "Every member's pod CIDRs of this family and its next hop, sorted by destination. A member installs all but its own." }),
  omitted: z.number().int().min(1).optional().meta({ description: `Routes left out beyond ${MAX_SEGMENT_ROUTES} (those pod CIDRs are reached through the ToR); absent when none.` }),
});

export const l2SegmentStatus = z.object({});

export const L2Segment = {
  kind: 'L2Segment',
  plural: 'l2segments',
  singular: 'l2segment',
  shortNames: ['pfseg'],
  categories: ['podfabric'],
  description: "The host-gw routes of one L2 segment and address family, written by the controller; each member node's agent installs them (all but its own).",
  spec: l2SegmentSpec,
  status: l2SegmentStatus,
  specRequired: true,
  printerColumns: [
    { name: 'Segment', type: 'string', jsonPath: '.spec.key' },
    { name: 'Family', type: 'integer', jsonPath: '.spec.family' },
    { name: 'Reason', type: 'string', jsonPath: '.spec.reason' },
    { name: 'Omitted', type: 'integer', jsonPath: '.spec.omitted', priority: 1 },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
} satisfies KindDef;

export type SegmentRoute = z.infer<typeof segmentRoute>;
export type L2SegmentSpec = z.infer<typeof l2SegmentSpec>;

/** FNV-1a, 32 bits, as 8 hex digits: tells apart keys that read the same once made a name. */
function fnv32(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * The L2Segment object of a segment key and family: `v4-label-rack-1-<hash>`, lower-case, every run of
 * other characters one '-', at most 63 characters (a label value, so usable in field selectors and
 * kubectl), the hash of the exact key keeping names unique.
 */
export function segmentObjectName(family: 4 | 6, key: string): string {
  const readable = key.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40).replace(/-+$/, '');
  return `v${family}-${readable ? `${readable}-` : ''}${fnv32(key)}`;
}
