/**
 * Fields that reference something are validated as what they reference, with the rules Kubernetes
 * itself applies (k8s.io/apimachinery/pkg/util/validation): label keys and values, object names
 * (DNS-1123 subdomains), namespaces (DNS-1123 labels), Secret data keys.
 *
 * Each check exists twice from one regex source: a CEL rule in the CRD (x-kubernetes-validations, with a
 * messageExpression that quotes the bad value and says what is expected) and a zod refinement for
 * objects parsed in TypeScript. Not an OpenAPI `pattern`: the apiserver's pattern message is the raw
 * regex ("should match '^…$'"). Length stays an OpenAPI maxLength: a value that is too long gets only
 * "Too long" (the apiserver skips CEL rules once the schema check failed), never a second, confusing
 * charset error. The regexes use `[.]` rather than `\.` so they read the same in JS and in CEL strings.
 */
import { z } from 'zod';
import { cel, type CelRule } from './cel.js';

const DNS_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS_SUBDOMAIN = `${DNS_LABEL}([.]${DNS_LABEL})*`;
const LABEL_NAME = '[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?';

export const LIMITS = { dnsLabel: 63, dnsSubdomain: 253, labelName: 63, labelValue: 63, labelKey: 253 + 1 + 63, secretKey: 253 } as const;

/** What each kind of reference must look like, for messages (CEL and zod say the same). */
export const EXPECTED = {
  labelKey:
    'a label key: an optional DNS subdomain prefix (at most 253 characters) and "/", then a name of at most 63 characters from A-Z a-z 0-9 - _ . that starts and ends with a letter or digit (e.g. podfabric.io/rack)',
  labelValue: 'a label value: empty, or at most 63 characters from A-Z a-z 0-9 - _ . starting and ending with a letter or digit',
  dnsSubdomain: 'a DNS-1123 subdomain: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters',
  dnsLabel: 'a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
  secretKey: 'a Secret data key: at most 253 characters from A-Z a-z 0-9 - _ . and not ".", ".." or starting with ".."',
} as const;

type Kind = keyof typeof EXPECTED;

const whole = (re: string) => `^${re}$`;
const LABEL_KEY_RE = whole(`(${DNS_SUBDOMAIN}/)?${LABEL_NAME}`);

/** CEL boolean expression over `v` (a string) for each kind. */
const celCheck: Record<Kind, (v: string) => string> = {
  // indexOf is -1 without a prefix, so the name-part bound also covers a bare name.
  labelKey: (v) => `${v}.matches('${LABEL_KEY_RE}') && ${v}.indexOf('/') <= 253 && ${v}.size() - ${v}.indexOf('/') - 1 <= 63`,
  labelValue: (v) => `${v}.matches('${whole(`(${LABEL_NAME})?`)}')`,
  dnsSubdomain: (v) => `${v}.matches('${whole(DNS_SUBDOMAIN)}')`,
  dnsLabel: (v) => `${v}.matches('${whole(DNS_LABEL)}')`,
  secretKey: (v) => `${v}.matches('^[-._a-zA-Z0-9]+$') && !${v}.startsWith('..') && ${v} != '.'`,
};

/** The same checks in TypeScript. */
const jsCheck: Record<Kind, (v: string) => boolean> = {
  labelKey: (v) => {
    const slash = v.indexOf('/');
    return new RegExp(LABEL_KEY_RE).test(v) && slash <= 253 && v.length - slash - 1 <= 63;
  },
  labelValue: (v) => new RegExp(whole(`(${LABEL_NAME})?`)).test(v),
  dnsSubdomain: (v) => new RegExp(whole(DNS_SUBDOMAIN)).test(v),
  dnsLabel: (v) => new RegExp(whole(DNS_LABEL)).test(v),
  secretKey: (v) => /^[-._a-zA-Z0-9]+$/.test(v) && !v.startsWith('..') && v !== '.',
};

/** Whether a string is a valid reference of this kind (length included). */
export function isValid(kind: Kind, v: string): boolean {
  const max = { labelKey: LIMITS.labelKey, labelValue: LIMITS.labelValue, dnsSubdomain: LIMITS.dnsSubdomain, dnsLabel: LIMITS.dnsLabel, secretKey: LIMITS.secretKey }[kind];
  return v.length <= max && jsCheck[kind](v);
}

function rule(kind: Kind): CelRule {
  return { rule: celCheck[kind]('self'), messageExpression: `'"' + self + '" is not ${EXPECTED[kind]}'` };
}

// No minLength: the apiserver would report an empty value twice (minLength and the CEL rule, which still
// runs after a minLength failure); every regex but the label value's already refuses "".
function referenceString(kind: Kind, max: number): z.ZodString {
  const s = z.string().max(max).refine((v) => jsCheck[kind](v), { message: `must be ${EXPECTED[kind]}` });
  return cel(s as unknown as z.ZodString, [rule(kind)]);
}

/** A label key, e.g. `podfabric.io/rack`. */
export const labelKey = referenceString('labelKey', LIMITS.labelKey);
/** A label value (may be empty). */
export const labelValue = referenceString('labelValue', LIMITS.labelValue);
/** The name of an object (Secret, Node, IPPool, BGPPeer...): a DNS-1123 subdomain. */
export const objectName = referenceString('dnsSubdomain', LIMITS.dnsSubdomain);
/** A namespace name: a DNS-1123 label. */
export const namespaceName = referenceString('dnsLabel', LIMITS.dnsLabel);
/** A key of a Secret's data. */
export const secretKey = referenceString('secretKey', LIMITS.secretKey);

/** CEL rule for a map whose keys must be label keys (map keys carry no schema of their own). */
export const labelKeysOfMap: CelRule = {
  rule: `self.all(k, ${celCheck.labelKey('k')})`,
  message: `every key must be ${EXPECTED.labelKey}`,
};

/** The same check in TypeScript: the first key that is not a label key, if any. */
export function badLabelKey(m: Record<string, string>): string | undefined {
  return Object.keys(m).find((k) => !isValid('labelKey', k));
}

/** A reference to a key of a Secret in a namespace. */
export const secretKeyRef = z.object({ namespace: namespaceName, name: objectName, key: secretKey });
