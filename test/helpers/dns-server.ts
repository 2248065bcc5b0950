/**
 * An in-process authoritative DNS server for tests: UDP on 127.0.0.1, ephemeral port, zones
 * declared by the test. Answers MX, A and AAAA from the declared records; NXDOMAIN for any name
 * not declared; NODATA (NOERROR, no answers) for a declared name without records of the asked
 * type; SERVFAIL for names marked with `servfail`; drops queries for names marked `timeout`.
 * Point Mailyard at it with `dns: { servers: [server.address] }` ("127.0.0.1:PORT").
 */
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

export interface ZoneRecords {
  /** MX records; use { exchange: '.', preference: 0 } for a null MX (RFC 7505). */
  readonly mx?: readonly { readonly exchange: string; readonly preference: number }[];
  readonly a?: readonly string[];
  readonly aaaa?: readonly string[];
  /** Answer SERVFAIL for every query of this name. */
  readonly servfail?: boolean;
  /** Never answer queries of this name. */
  readonly timeout?: boolean;
}

export interface TestDnsServer {
  /** "127.0.0.1:PORT", ready for dns.servers. */
  readonly address: string;
  readonly port: number;
  /** Replaces or adds the records of one name (lower-cased, without the trailing dot). */
  set(name: string, records: ZoneRecords): void;
  /** Names queried so far, as "TYPE name". */
  readonly queries: string[];
  close(): Promise<void>;
}

const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;

function key(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

export async function startDnsServer(zones: Record<string, ZoneRecords> = {}): Promise<TestDnsServer> {
  const table = new Map<string, ZoneRecords>();
  for (const [name, recs] of Object.entries(zones)) table.set(key(name), recs);
  const queries: string[] = [];
  const socket = dgram.createSocket('udp4');

  socket.on('message', (msg, rinfo) => {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const q = query.questions?.[0];
    if (!q) return;
    const name = key(q.name);
    queries.push(`${q.type} ${name}`);
    const recs = table.get(name);
    if (recs?.timeout) return;
    let rcode = 0;
    const answers: dnsPacket.Answer[] = [];
    if (!recs) rcode = RCODE_NXDOMAIN;
    else if (recs.servfail) rcode = RCODE_SERVFAIL;
    else if (q.type === 'MX') for (const mx of recs.mx ?? []) answers.push({ type: 'MX', name: q.name, ttl: 60, data: { exchange: mx.exchange === '.' ? '' : mx.exchange, preference: mx.preference } });
    else if (q.type === 'A') for (const ip of recs.a ?? []) answers.push({ type: 'A', name: q.name, ttl: 60, data: ip });
    else if (q.type === 'AAAA') for (const ip of recs.aaaa ?? []) answers.push({ type: 'AAAA', name: q.name, ttl: 60, data: ip });
    const response = dnsPacket.encode({
      type: 'response',
      id: query.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | rcode,
      questions: [q],
      answers,
    });
    socket.send(response, rinfo.port, rinfo.address);
  });

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const port = socket.address().port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    queries,
    set(name, records) {
      table.set(key(name), records);
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
