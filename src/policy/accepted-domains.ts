/**
 * Accepted domains (reference 7): which of our domains a mail domain belongs to, and as which
 * type. "contoso.com" matches that domain only; "*.contoso.com" matches contoso.com and every
 * subdomain. The most specific entry wins: an exact name beats any wildcard, a longer wildcard
 * suffix beats a shorter one. Pure.
 */
import type { AcceptedDomain } from '../config/schema.js';

export type DomainType = AcceptedDomain['domainType'];

export interface DomainMatch {
  readonly domainName: string;
  readonly domainType: DomainType;
}

export function classifyDomain(domains: readonly Pick<AcceptedDomain, 'domainName' | 'domainType'>[], domain: string): DomainMatch | undefined {
  const d = domain.toLowerCase().replace(/\.$/, '');
  if (!d) return undefined;
  let best: DomainMatch | undefined;
  let bestScore = -1;
  for (const entry of domains) {
    const name = entry.domainName.toLowerCase().replace(/\.$/, '');
    let score = -1;
    if (name.startsWith('*.')) {
      const suffix = name.slice(2);
      if (d === suffix || d.endsWith(`.${suffix}`)) score = suffix.length;
    } else if (name === d) {
      score = Number.MAX_SAFE_INTEGER;
    }
    if (score > bestScore) {
      bestScore = score;
      best = { domainName: entry.domainName, domainType: entry.domainType };
    }
  }
  return best;
}
