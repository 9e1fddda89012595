/**
 * Table-driven bad-input checks against the real kube-apiserver (test/setup/global.ts): every case is
 * sent as a server-side dry run (admission and validation run in full, nothing is stored), so the files
 * touch no shared state and need no lock.
 *
 * A refusal must be a 422 naming the expected field, with a message saying what is expected, and with
 * no second error for the same bad value: the only other cause allowed is the apiserver's own note that
 * CEL rules were skipped because the schema check already failed.
 */
import { describe, expect, it } from 'vitest';
import { API_PATH } from '../../operator/api/common.js';
import { KubeError } from '../../operator/kube/rest.js';
import { testRest } from './kube.js';

export interface BadCase {
  /** What is wrong, for the test name. */
  what: string;
  spec: Record<string, unknown>;
  /** Field path the apiserver must name, e.g. spec.nodeSelector.matchLabels[rack]. */
  field: string;
  message: RegExp;
  /** metadata.name (default: the kind's usual valid name). */
  name?: string;
}

export interface GoodCase {
  what: string;
  spec: Record<string, unknown>;
  name?: string;
}

interface Cause {
  field?: string;
  message?: string;
  reason?: string;
}

/** The apiserver's note when CEL rules were skipped after a schema error: not a second error about the value. */
export const SKIPPED_NOTE = /some validation rules were not checked because the object was invalid/;

const rest = testRest();

export function object(kind: string, name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'podfabric.io/v1alpha1', kind, metadata: { name }, spec };
}

/** POSTs the object as a dry run; resolves with the refusal's causes, or null when it was accepted. */
export async function dryRunCreate(plural: string, obj: unknown): Promise<{ causes: Cause[]; message: string } | null> {
  try {
    await rest.request('POST', `${API_PATH}/${plural}?dryRun=All&fieldValidation=Strict`, obj);
    return null;
  } catch (e) {
    if (!(e instanceof KubeError) || e.code !== 422) throw e;
    const causes = ((e.details as { causes?: Cause[] } | undefined)?.causes ?? []).filter((c) => !SKIPPED_NOTE.test(c.message ?? ''));
    return { causes, message: e.message };
  }
}

export function badInputSuite(o: { kind: string; plural: string; defaultName: string; bad: BadCase[]; good: GoodCase[] }): void {
  describe(`${o.kind}: refused by the apiserver`, () => {
    it.each(o.bad.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
      const r = await dryRunCreate(o.plural, object(o.kind, c.name ?? o.defaultName, c.spec));
      expect(r, `accepted: ${JSON.stringify(c.spec)}`).not.toBeNull();
      // Exactly one error, on the expected field, saying what is expected; the message names the path too.
      expect(r!.causes.map((x) => x.field)).toEqual([c.field]);
      expect(r!.causes[0]!.message).toMatch(c.message);
      expect(r!.message).toContain(`${c.field}: `);
    });
  });

  describe(`${o.kind}: valid edge cases accepted`, () => {
    it.each(o.good.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
      const r = await dryRunCreate(o.plural, object(o.kind, c.name ?? o.defaultName, c.spec));
      expect(r?.message ?? 'accepted').toBe('accepted');
    });
  });
}
