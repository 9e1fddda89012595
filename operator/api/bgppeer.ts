import { z } from 'zod';
import { asn, cel, conditions, ipAddress, labelSelector } from './common.js';
import { secretKey, secretKeyRef } from './names.js';

export const community = cel(z.string().max(11).regex(/^[0-9]{1,5}:[0-9]{1,5}$/), [
  { rule: "self.split(':').all(p, int(p) <= 65535)", message: 'each half of a community must be 0-65535 (e.g. 65000:100)' },
]);

export const bgpPeerSpec = z.object({
  peerAddress: cel(ipAddress, [
    {
      rule: "!isIP(self) || !(ip(self).isUnspecified() || cidr('224.0.0.0/4').containsIP(ip(self)) || cidr('240.0.0.0/4').containsIP(ip(self)) || cidr('ff00::/8').containsIP(ip(self)))",
      messageExpression: `'"' + self + '" cannot be a BGP neighbour: unspecified (0.0.0.0, ::), multicast (224.0.0.0/4, ff00::/8) and reserved (240.0.0.0/4) addresses are refused'`,
    },
  ]).meta({ description: "The router's address (e.g. the ToR's address on the node's subnet). Not unspecified, multicast or 240.0.0.0/4." }),
  peerASN: asn,
  localASN: asn.optional().meta({ description: "The nodes' ASN for this session; default: FabricConfig asn or the node's podfabric.io/asn label." }),
  nodeSelector: labelSelector.optional(),
  passwordSecretRef: secretKeyRef
    .extend({ key: secretKey.default('password') })
    .optional()
    .meta({ description: 'TCP MD5 password (RFC 2385) taken from this Secret key. Never logged.' }),
  timers: cel(
    z
      .object({
        holdTime: cel(z.number().int().min(0).max(65535).default(90), [
          { rule: 'self == 0 || self >= 3', message: 'holdTime must be 0 (no keepalives) or at least 3 seconds' },
        ]),
        keepaliveInterval: z.number().int().min(0).max(21845).default(30),
        connectRetry: z.number().int().min(1).max(65535).default(5).meta({
          description: "Seconds between connection attempts. Short by default: GoBGP's own 120 s keeps sessions down for minutes after a ToR restart.",
        }),
      })
      .default({ holdTime: 90, keepaliveInterval: 30, connectRetry: 5 }),
    [{ rule: 'self.holdTime == 0 || self.keepaliveInterval * 3 <= self.holdTime', message: 'keepaliveInterval must be at most a third of holdTime' }],
  ),
  gracefulRestart: z
    .object({
      enabled: z.boolean().default(false),
      restartTime: z.number().int().min(1).max(4095).default(120),
    })
    .optional(),
  ebgpMultihop: z.number().int().min(1).max(255).optional().meta({ description: 'TTL for eBGP sessions to a router more than one hop away.' }),
  communities: z.array(community).max(32).optional().meta({ description: "Communities attached to the node's advertised pod CIDRs, e.g. 65000:100." }),
});

export const bgpPeerStatus = z.object({
  observedGeneration: z.number().int().min(0).optional(),
  conditions: conditions.optional(),
  nodesSelected: z.number().int().min(0).optional(),
  nodesEstablished: z.number().int().min(0).optional(),
});

export type BGPPeerSpec = z.infer<typeof bgpPeerSpec>;
export type BGPPeerStatus = z.infer<typeof bgpPeerStatus>;
