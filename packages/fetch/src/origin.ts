/**
 * Origins of URL strings, parsed once per distinct authority.
 *
 * A URL's origin depends only on its scheme and authority, and the WHATWG URL
 * parser cannot fail after the authority: for `http:` and `https:` the
 * authority ends at the first `/`, `\`, `?` or `#`. So the origin of
 * `"http://host:port/any/path?q"` is the origin of `"http://host:port"`, and a
 * string whose prefix fails to parse fails as a whole. Strings of that exact
 * shape (lowercase scheme, two slashes, a non-empty authority) are answered
 * from a small cache keyed by that prefix; any other string is parsed in full.
 */

/** Distinct prefixes held at most; the cache starts over when it is full. */
const MAX_PREFIXES = 256;

/** Prefix → its origin, or null when it is not a valid URL. */
const origins = new Map<string, string | null>();

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const QUESTION_MARK = 0x3f;
const NUMBER_SIGN = 0x23;

/** The prefix that decides the origin of `text`, or undefined when `text` does not have the common shape. */
function authorityPrefix(text: string): string | undefined {
  let start: number;
  if (text.startsWith('http://')) start = 7;
  else if (text.startsWith('https://')) start = 8;
  else return undefined;
  let end = start;
  for (; end < text.length; end++) {
    const c = text.charCodeAt(end);
    if (c === SLASH || c === BACKSLASH || c === QUESTION_MARK || c === NUMBER_SIGN) break;
  }
  // "http:///host" and the like: the parser skips the extra slashes; leave it to the parser.
  if (end === start) return undefined;
  return end === text.length ? text : text.slice(0, end);
}

function parseOrigin(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : null;
}

/**
 * The origin (`"http://host:port"`) of the http(s) URL `text`, or null when
 * `text` is not a valid URL or not an http(s) one.
 */
export function httpOrigin(text: string): string | null {
  // A client that calls one URL over and over passes the same string again.
  if (text === lastText) return lastOrigin;
  const origin = cachedOrigin(text);
  lastText = text;
  lastOrigin = origin;
  return origin;
}

/** The string asked for last, and its origin. */
let lastText: string | undefined;
let lastOrigin: string | null = null;

function cachedOrigin(text: string): string | null {
  const prefix = authorityPrefix(text);
  if (prefix === undefined) return parseOrigin(text);
  let origin = origins.get(prefix);
  if (origin === undefined) {
    origin = parseOrigin(prefix);
    if (origins.size >= MAX_PREFIXES) origins.clear();
    origins.set(prefix, origin);
  }
  return origin;
}
