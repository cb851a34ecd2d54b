// Simulates the administrator's browser for OAuth redirect chains, without a browser:
// iflow authorize (302) → authorization server (302) → iflow callback (200 page).

export interface Hop {
  url: string;
  status: number;
  /** Absolute target of a redirect; undefined on the final response. */
  location: string | undefined;
}

export interface FollowRedirectsOptions {
  /** Sent only to the start URL's origin (as a browser resends Basic credentials only there). */
  headers?: Record<string, string>;
  /** Most redirects followed before giving up with an error (default 5). */
  maxHops?: number;
  /** Cookie jar to use and fill; pass the same jar to continue a "browser session". */
  cookies?: CookieJar;
}

export interface FollowRedirectsResult {
  /** Every response in order, redirects and the final one. */
  hops: Hop[];
  /** The first non-redirect response, body unread. */
  final: Response;
  cookies: CookieJar;
}

const REDIRECT = new Set([301, 302, 303, 307, 308]);

/**
 * A minimal cookie jar keyed by origin (host and port, unlike real browsers, so two loopback
 * servers on different ports never see each other's cookies). Honours Max-Age/Expires deletion;
 * ignores Path, Domain and Secure.
 */
export class CookieJar {
  private readonly byOrigin = new Map<string, Map<string, string>>();

  store(url: string, setCookieHeaders: string[]): void {
    const origin = new URL(url).origin;
    const jar = this.byOrigin.get(origin) ?? new Map<string, string>();
    this.byOrigin.set(origin, jar);
    for (const header of setCookieHeaders) {
      const [pair = '', ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      if (isExpired(attributes)) jar.delete(name);
      else jar.set(name, pair.slice(eq + 1).trim());
    }
  }

  /** The Cookie header value for a request to `url`, or undefined when there is none. */
  header(url: string): string | undefined {
    const jar = this.byOrigin.get(new URL(url).origin);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  get(url: string, name: string): string | undefined {
    return this.byOrigin.get(new URL(url).origin)?.get(name);
  }
}

function isExpired(attributes: string[]): boolean {
  for (const attribute of attributes) {
    const [key = '', value = ''] = attribute.split('=').map((s) => s.trim());
    if (key.toLowerCase() === 'max-age' && Number(value) <= 0) return true;
    if (key.toLowerCase() === 'expires' && Date.parse(value) <= Date.now()) return true;
  }
  return false;
}

/**
 * GETs `startUrl` and follows 3xx Location hops across hosts, like a browser would, keeping
 * cookies per origin. Redirect bodies are drained so connections are reused.
 */
export async function followRedirects(startUrl: string, options: FollowRedirectsOptions = {}): Promise<FollowRedirectsResult> {
  const { headers = {}, maxHops = 5, cookies = new CookieJar() } = options;
  const startOrigin = new URL(startUrl).origin;
  const hops: Hop[] = [];
  let url = startUrl;
  for (let redirects = 0; ; redirects++) {
    const requestHeaders: Record<string, string> = new URL(url).origin === startOrigin ? { ...headers } : {};
    const cookie = cookies.header(url);
    if (cookie !== undefined) requestHeaders.cookie = cookie;
    const response = await fetch(url, { redirect: 'manual', headers: requestHeaders });
    cookies.store(url, response.headers.getSetCookie());
    const locationHeader = response.headers.get('location');
    if (!REDIRECT.has(response.status) || locationHeader === null) {
      hops.push({ url, status: response.status, location: undefined });
      return { hops, final: response, cookies };
    }
    const location = new URL(locationHeader, url).toString();
    hops.push({ url, status: response.status, location });
    await response.arrayBuffer();
    if (redirects >= maxHops) throw new Error(`followRedirects: more than ${maxHops} redirects: ${hops.map((h) => `${h.status} ${h.url}`).join(' → ')}`);
    url = location;
  }
}
