/**
 * Which Host names the daemon answers to. A web page on any site can make a browser talk to 127.0.0.1 by
 * pointing its own DNS name at it (DNS rebinding); the browser then sends that name in Host. So only names that
 * cannot be rebound are accepted: IP addresses, localhost and *.localhost (always resolved locally), the address
 * the daemon listens on, and the names the configuration adds (server.allowedHosts; ".example.org" also admits
 * its subdomains). WebSocket upgrades also need an allowed Origin, so a page elsewhere cannot open one.
 */
import { isIP } from 'node:net';

export interface HostPolicy {
  /** Is this Host header (name, optionally :port) one the daemon answers to? */
  hostAllowed(hostHeader: string | undefined): boolean;
  /**
   * Is this Origin acceptable for a WebSocket upgrade with this Host? Absent (non-browser clients) is; else it
   * must be the page the daemon served (same host and port) or a configured or localhost name (a reverse proxy).
   */
  originAllowed(origin: string | undefined, hostHeader: string | undefined): boolean;
}

/** The name part of a Host header, lower-case, without port or IPv6 brackets; undefined if malformed. */
export function hostName(hostHeader: string): string | undefined {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end === -1 || (end + 1 < h.length && !/^:\d{1,5}$/.test(h.slice(end + 1)))) return undefined;
    return h.slice(1, end);
  }
  const m = /^([^:]+)(?::\d{1,5})?$/.exec(h);
  return m?.[1]?.replace(/\.$/, '');
}

export function createHostPolicy(listenHost: string, extra: readonly string[] = []): HostPolicy {
  const exact = new Set(['localhost', listenHost.toLowerCase().replace(/^\[|\]$/g, '')]);
  const suffixes = ['.localhost'];
  for (const name of extra) {
    const n = name.trim().toLowerCase();
    if (n.startsWith('.')) {
      suffixes.push(n);
      exact.add(n.slice(1));
    } else exact.add(n);
  }
  const named = (name: string): boolean => exact.has(name) || suffixes.some((s) => name.endsWith(s));
  const nameAllowed = (name: string | undefined): boolean => name !== undefined && name !== '' && (isIP(name) !== 0 || named(name));
  return {
    hostAllowed: (hostHeader) => hostHeader !== undefined && nameAllowed(hostName(hostHeader)),
    originAllowed: (origin, hostHeader) => {
      if (origin === undefined) return true;
      try {
        const url = new URL(origin);
        if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
        if (hostHeader !== undefined && url.host === hostHeader.trim().toLowerCase()) return true;
        const name = hostName(url.host);
        return name !== undefined && named(name);
      } catch {
        return false; // includes the literal "null" of sandboxed frames and file: pages
      }
    },
  };
}
