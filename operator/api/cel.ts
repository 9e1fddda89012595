import type { z } from 'zod';

/** One Kubernetes CEL validation rule (x-kubernetes-validations entry): a fixed message or a messageExpression. */
export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: string;
}

/** Attach Kubernetes CEL validation rules to a schema node. */
export function cel<T extends z.ZodType>(schema: T, rules: CelRule[]): T {
  const existing = (schema.meta()?.['x-kubernetes-validations'] as unknown[] | undefined) ?? [];
  return schema.meta({ 'x-kubernetes-validations': [...existing, ...rules] }) as T;
}

/** A list treated by server-side apply as a map keyed by `keys` (entries must carry them). */
export function listMap<T extends z.ZodType>(schema: T, keys: string[]): T {
  return schema.meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': keys }) as T;
}
