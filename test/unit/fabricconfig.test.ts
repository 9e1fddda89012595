/** The one FabricConfig reader shared by the controller and the agent. */
import { describe, expect, it } from 'vitest';
import { effectiveFabricConfig, fabricConfigSpec } from '../../operator/api/fabricconfig.js';

describe('effectiveFabricConfig', () => {
  const defaults = fabricConfigSpec.parse({});
  const previous = fabricConfigSpec.parse({ routeProtocol: 202 });
  it.each([
    ['absent: the built-in defaults', undefined, defaults, undefined],
    ['decoded: its spec', { ok: true as const, value: { spec: fabricConfigSpec.parse({ routeProtocol: 210 }) } }, fabricConfigSpec.parse({ routeProtocol: 210 }), undefined],
    ['unreadable: the previous spec, with the reason', { ok: false as const, error: 'routeProtocol: expected number' }, previous, 'routeProtocol: expected number'],
  ])('%s', (_name, decoded, spec, error) => {
    const r = effectiveFabricConfig(decoded, previous);
    expect(r.spec).toEqual(spec);
    expect(r.error).toBe(error);
  });
});
