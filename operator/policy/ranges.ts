/** ipBlock arithmetic: a CIDR minus its except list, as disjoint inclusive address ranges. Pure. */
import { formatIP, lastAddress, type Cidr } from '../lib/ip.js';

export function cidrMinus(cidr: Cidr, except: Cidr[]): Array<[bigint, bigint]> {
  let out: Array<[bigint, bigint]> = [[cidr.network, lastAddress(cidr)]];
  for (const e of except) {
    if (e.family !== cidr.family) continue;
    const [ea, eb] = [e.network, lastAddress(e)];
    const next: Array<[bigint, bigint]> = [];
    for (const [a, b] of out) {
      if (eb < a || ea > b) {
        next.push([a, b]);
        continue;
      }
      if (ea > a) next.push([a, ea - 1n]);
      if (eb < b) next.push([eb + 1n, b]);
    }
    out = next;
  }
  return out;
}

/** The ranges as text, e.g. [["10.0.0.0", "10.0.0.9"], ["10.0.0.11", "10.15.255.255"]]. */
export function blockRanges(cidr: Cidr, except: Cidr[]): Array<[string, string]> {
  return cidrMinus(cidr, except).map(([a, b]) => [formatIP(cidr.family, a), formatIP(cidr.family, b)]);
}
