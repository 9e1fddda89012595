/** Text of an explanation, for `kubectl fabric policy SRC DST [--port P/PROTO]` (pure). */
import type { Explanation, Flow, SideExplanation } from './semantics.js';

function sideLines(title: string, s: SideExplanation): string[] {
  const who = s.pod ?? 'not a pod';
  const sel = s.selectedBy.length ? s.selectedBy.join(', ') : '(none)';
  const verdict: Record<SideExplanation['verdict'], string> = {
    'not-isolated': 'ALLOWED (not isolated: no policy selects it)',
    node: 'ALLOWED (from the pod’s own node: always allowed)',
    allowed: `ALLOWED by ${s.allowedBy.map((r) => `${r.policy} ${title.toLowerCase()}[${r.rule}]`).join(', ')}`,
    denied: `DENIED: isolated by ${sel}, and no ${title.toLowerCase()} rule of them matches`,
  };
  return [`${title.padEnd(8)} ${who}`, `  selected by: ${sel}`, `  verdict:     ${verdict[s.verdict]}`];
}

export function formatExplanation(flow: Flow, e: Explanation): string {
  return [
    `${flow.src} -> ${flow.dst} ${flow.protocol}/${flow.port}: ${e.allowed ? 'ALLOWED' : 'DENIED'}`,
    ...sideLines('Egress', e.egress),
    ...sideLines('Ingress', e.ingress),
  ].join('\n');
}
