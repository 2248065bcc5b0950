/**
 * Address spaces of Send, Foreign and Delivery Agent connectors: "TYPE:ADDRESS;COST".
 * Type defaults to SMTP and cost to 1. SMTP spaces are "*", "domain" (that domain only) or
 * "*.domain" (the domain and every subdomain). Non-SMTP types (FAX, X400, ...) are free text.
 */

export interface AddressSpace {
  readonly type: string; // upper case: "SMTP", "FAX"
  readonly address: string; // lower case for SMTP
  readonly cost: number;
  readonly text: string; // canonical "SMTP:*.contoso.com;1"
}

export function parseAddressSpace(input: string | { type?: string; address: string; cost?: number }): AddressSpace | { error: string } {
  let type = 'SMTP';
  let address: string;
  let cost = 1;
  if (typeof input === 'string') {
    let rest = input.trim();
    const colon = rest.indexOf(':');
    if (colon > 0 && /^[A-Za-z][A-Za-z0-9-]*$/.test(rest.slice(0, colon))) {
      type = rest.slice(0, colon).toUpperCase();
      rest = rest.slice(colon + 1);
    }
    const semi = rest.lastIndexOf(';');
    if (semi >= 0) {
      const c = rest.slice(semi + 1).trim();
      if (!/^\d+$/.test(c)) {
        if (type !== 'SMTP') {
          // A semicolon inside a non-SMTP space needs an explicit cost (Exchange's rule).
          return { error: `address space "${input}": a non-SMTP address containing ";" needs an explicit ";COST" at the end` };
        }
        return { error: `address space "${input}": cost "${c}" is not a number` };
      }
      cost = Number(c);
      rest = rest.slice(0, semi);
    }
    address = rest.trim();
  } else {
    type = (input.type ?? 'SMTP').toUpperCase();
    address = input.address.trim();
    cost = input.cost ?? 1;
  }
  if (!address) return { error: `address space "${typeof input === 'string' ? input : address}": empty address` };
  if (!Number.isInteger(cost) || cost < 1 || cost > 100) return { error: `address space "${typeof input === 'string' ? input : address}": cost must be 1-100` };
  if (type === 'SMTP') {
    address = address.toLowerCase();
    if (address !== '*' && address !== '--') {
      const domain = address.startsWith('*.') ? address.slice(2) : address;
      if (domain.includes('*')) return { error: `address space "${address}": "*" is allowed only alone or as a leading "*." (e.g. "*.contoso.com")` };
      if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/.test(domain)) {
        return { error: `address space "${address}": not a domain name` };
      }
    }
  }
  return { type, address, cost, text: `${type}:${address};${cost}` };
}

export function isAddressSpace(a: AddressSpace | { error: string }): a is AddressSpace {
  return !('error' in a);
}

/**
 * How specifically an SMTP address space matches a domain: -1 = no match; otherwise larger is
 * more specific (exact > longer "*." suffix > shorter > "*").
 */
export function smtpMatchSpecificity(space: AddressSpace, domain: string): number {
  if (space.type !== 'SMTP') return -1;
  const d = domain.toLowerCase().replace(/\.$/, '');
  if (space.address === '*') return 0;
  if (space.address.startsWith('*.')) {
    const suffix = space.address.slice(2);
    if (d === suffix || d.endsWith(`.${suffix}`)) return 1 + suffix.split('.').length * 2;
    return -1;
  }
  return d === space.address ? 1_000 : -1;
}
