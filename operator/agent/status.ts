/**
 * The agent's conditions from what it observed. Pure: the agent passes in what the router and the
 * kernel report, gets back conditions with reasons an operator can act on.
 */
import type { ConditionInput } from '../api/conditions.js';
import type { Md5Counters } from '../host/netstat.js';

export interface ObservedSession {
  address: string;
  name?: string;
  state: string;
  /** ms since the session left Established or was configured, when not Established */
  downForMs?: number;
  lastError?: string;
  passwordSet: boolean;
  connectRetry: number;
  /** Growth of the node's TCP MD5 counters since the session went down (when the agent could read them). */
  md5?: Md5Counters;
}

export interface AgentObservation {
  planned: boolean;
  peersPlanned: number;
  sessions: ObservedSession[];
  routesWanted: number;
  /** The node's L2Segments are not known yet (a cache still listing, or one unreadable): its host routes were left as they are. */
  routesUnknown?: boolean;
  routesMissing: string[];
  routeErrors: string[];
  /** How many routes differ from the plan after the apply (status.routeProblemsTotal; 0 when none). */
  routeProblems?: number;
  uplinkFound: boolean;
  bgpError?: string;
  cni?: { written: boolean; reason?: string };
}

export interface SessionDiagnosis {
  hint: string;
  /** AuthFailure: the kernel's MD5 counters prove it; AuthFailureSuspected: a password is set and nothing answers. */
  auth?: 'AuthFailure' | 'AuthFailureSuspected';
}

export function diagnoseSession(s: ObservedSession): SessionDiagnosis {
  if (s.state === 'Established') return { hint: 'established' };
  const base = `${s.address}${s.name ? ` (${s.name})` : ''} is ${s.state}`;
  const m = s.md5;
  if (m && s.passwordSet && m.failure > 0) {
    return { auth: 'AuthFailure', hint: `${base}: TCP MD5 signature mismatch — the kernel dropped ${m.failure} segment(s) whose signature did not verify since the session went down (TcpExt TCPMD5Failure): the password differs from the router's` };
  }
  if (m && s.passwordSet && m.notFound > 0) {
    return { auth: 'AuthFailure', hint: `${base}: the router sends no TCP MD5 signature (TcpExt TCPMD5NotFound +${m.notFound}) while a password is set here: set it on the router too` };
  }
  if (m && !s.passwordSet && m.unexpected > 0) {
    return { auth: 'AuthFailure', hint: `${base}: the router signs its segments with TCP MD5 (TcpExt TCPMD5Unexpected +${m.unexpected}) but this BGPPeer has no passwordSecretRef` };
  }
  if (s.lastError) return { hint: `${base}: ${s.lastError}` };
  const longDown = (s.downForMs ?? 0) > Math.max(10_000, 3 * s.connectRetry * 1000);
  if (s.passwordSet && longDown && (s.state === 'Active' || s.state === 'Connect' || s.state === 'Idle')) {
    return {
      auth: 'AuthFailureSuspected',
      hint: `${base}: no TCP session for ${Math.round((s.downForMs ?? 0) / 1000)}s with an MD5 password set — auth failure suspected (a password mismatch makes the kernel drop the router's segments silently; check the password on both sides)`,
    };
  }
  if (longDown) return { hint: `${base}: the router does not answer on TCP 179 (check that it has this node as a neighbour, the ASNs and the address)` };
  return { hint: `${base}: connecting` };
}

export function sessionHint(s: ObservedSession): string {
  return diagnoseSession(s).hint;
}

export function agentConditions(o: AgentObservation): ConditionInput[] {
  const out: ConditionInput[] = [];
  let bgp: ConditionInput;
  if (!o.planned) bgp = { type: 'BGPReady', status: 'False', reason: 'NoPlan', message: "this node's Node object is not known to the agent yet: its sessions cannot be derived" };
  else if (o.bgpError) bgp = { type: 'BGPReady', status: 'False', reason: 'RouterError', message: o.bgpError };
  else if (o.peersPlanned === 0) bgp = { type: 'BGPReady', status: 'False', reason: 'NoPeers', message: 'no BGPPeer selects this node: its pod CIDRs are not advertised' };
  else {
    const down = o.sessions.filter((s) => s.state !== 'Established');
    const auth = down.map((s) => diagnoseSession(s).auth);
    bgp = down.length
      ? {
          type: 'BGPReady',
          status: 'False',
          reason: auth.includes('AuthFailure') ? 'AuthFailure' : auth.includes('AuthFailureSuspected') ? 'AuthFailureSuspected' : 'SessionsDown',
          message: `${o.sessions.length - down.length}/${o.sessions.length} sessions established; ${down.map(sessionHint).join('; ')}`,
        }
      : { type: 'BGPReady', status: 'True', reason: 'Established', message: `${o.sessions.length}/${o.sessions.length} sessions established` };
  }
  out.push(bgp);

  // Every RoutesReady message leads with the count of routes that differ from the plan, when any do.
  const p = o.routeProblems ?? 0;
  const lead = p ? `${p} route(s) differ from the plan (status.routeProblems): ` : '';
  let routes: ConditionInput;
  if (o.routesUnknown) routes = { type: 'RoutesReady', status: 'Unknown', reason: 'SegmentsNotKnown', message: `the node's L2Segments are not known yet (a cache still listing, or one unreadable): its ${o.routesWanted} host route(s) in the kernel are left as they are` };
  else if (!o.uplinkFound && o.routesWanted > 0) routes = { type: 'RoutesReady', status: 'False', reason: 'NoUplink', message: `${lead}no interface holds the node's IP: host routes cannot be installed` };
  else if (o.routeErrors.length) routes = { type: 'RoutesReady', status: 'False', reason: 'KernelError', message: lead + o.routeErrors.slice(0, 5).join('; ') };
  else if (o.routesMissing.length) routes = { type: 'RoutesReady', status: 'False', reason: 'Missing', message: `${lead}${o.routesMissing.length} route(s) not in the kernel: ${o.routesMissing.slice(0, 5).join(', ')}` };
  else routes = { type: 'RoutesReady', status: 'True', reason: 'Installed', message: `${lead}${o.routesWanted} host route(s) installed` };
  out.push(routes);

  if (o.cni) {
    out.push(
      o.cni.written
        ? { type: 'CNIReady', status: 'True', reason: 'Written', message: 'CNI configuration written' }
        : { type: 'CNIReady', status: 'False', reason: 'Waiting', message: o.cni.reason ?? 'not written yet' },
    );
  }
  const notReady = out.filter((c) => c.status !== 'True');
  out.push(
    notReady.length
      ? { type: 'Ready', status: 'False', reason: notReady[0]!.reason, message: notReady.map((c) => `${c.type}: ${c.message}`).join(' | ') }
      : { type: 'Ready', status: 'True', reason: 'Ready', message: 'sessions established, routes installed' + (o.cni ? ', CNI configuration written' : '') },
  );
  return out;
}
