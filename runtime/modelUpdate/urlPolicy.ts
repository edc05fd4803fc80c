import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP } from "node:net";

/** Where update_model may download from. */
export interface UrlPolicy {
  /** URL schemes allowed, without the colon ("https", "http"). */
  schemes: readonly string[];
  /**
   * Host names allowed: exact names, or "*.example.com" for any name below example.com.
   * Undefined: any host (only for tools and tests; the daemon always passes its list).
   */
  hosts?: readonly string[];
  /** Loopback, link-local, private and other non-public addresses; refused unless true. */
  allowPrivate: boolean;
}

const NON_PUBLIC = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  NON_PUBLIC.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
  ["2001:db8::", 32],
  ["100::", 64],
] as const)
  NON_PUBLIC.addSubnet(net, bits, "ipv6");

/** An IPv4 address carried inside an IPv6 one (mapped, NAT64, 6to4 compatible), which must be judged as IPv4. */
function embeddedV4(addr: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::|::)(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  if (m) return m[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(addr);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return undefined;
}

/** True for loopback, link-local, private, shared, documentation, multicast and reserved addresses. */
export function isNonPublicAddress(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const v4 = isIP(a) === 6 ? embeddedV4(a) : undefined;
  if (v4 !== undefined) return NON_PUBLIC.check(v4, "ipv4");
  const family = isIP(a);
  if (family === 0) return true;
  return NON_PUBLIC.check(a, family === 4 ? "ipv4" : "ipv6");
}

/** A host as the URL parser writes it (IPv6 compressed, IPv4-mapped in hex), so allow-list entries compare equal. */
function normalHost(host: string): string {
  const h = host.replace(/^\[|\]$/g, "");
  try {
    return new URL(`http://${isIP(h) === 6 ? `[${h}]` : h}/`).hostname.replace(/^\[|\]$/g, "").toLowerCase();
  } catch {
    return h.toLowerCase();
  }
}

function hostAllowed(host: string, hosts: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return hosts.some((pattern) => {
    const p = pattern.startsWith("*.") ? pattern.toLowerCase() : normalHost(pattern);
    return p.startsWith("*.") ? h.endsWith(p.slice(1)) && h.length > p.length - 1 : h === p;
  });
}

/**
 * Why `url` may not be fetched under `policy`, or undefined when it may. Checks the scheme, the
 * absence of credentials, the host against the allow-list, and a literal IP address against the
 * non-public ranges (names are checked when they resolve, see {@link guardedLookup}).
 */
export function urlProblem(url: URL, policy: UrlPolicy): string | undefined {
  const scheme = url.protocol.replace(/:$/, "");
  if (!policy.schemes.includes(scheme)) return `scheme "${scheme}" is not allowed (allowed: ${policy.schemes.join(", ") || "none"})`;
  if (url.username !== "" || url.password !== "") return "the URL must not carry credentials (user:password@); use a host that needs none";
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (policy.hosts !== undefined && !hostAllowed(host, policy.hosts)) {
    return policy.hosts.length === 0
      ? "no download host is allowed (set commands.model_update.allowed_hosts)"
      : `host "${host}" is not in commands.model_update.allowed_hosts (${policy.hosts.join(", ")})`;
  }
  if (isIP(host) !== 0 && !policy.allowPrivate && isNonPublicAddress(host)) {
    return `address ${host} is loopback, link-local or private (commands.model_update.allow_private_addresses is false)`;
  }
  return undefined;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http(s).request that resolves the name and refuses it when any address it
 * resolves to is non-public (unless allowed): a name that points at the camera network or at
 * the device itself is refused before a connection is made.
 */
export function guardedLookup(policy: UrlPolicy) {
  return (hostname: string, options: { all?: boolean; family?: number | string }, callback: LookupCallback): void => {
    dnsLookup(hostname, { all: true, family: typeof options.family === "number" ? options.family : 0 }, (err, addresses) => {
      if (err) {
        callback(err, []);
        return;
      }
      const bad = policy.allowPrivate ? undefined : addresses.find((a) => isNonPublicAddress(a.address));
      if (bad) {
        callback(
          Object.assign(
            new Error(
              `${hostname} resolves to ${bad.address}, a loopback, link-local or private address (commands.model_update.allow_private_addresses is false)`,
            ),
            {
              code: "ENONPUBLIC",
            },
          ),
          [],
        );
        return;
      }
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}
