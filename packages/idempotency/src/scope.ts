const HEX = '0123456789ABCDEF';

function percentByte(byte: number): string {
  return `%${HEX[byte >> 4]}${HEX[byte & 0xf]}`;
}

/**
 * `scope` percent-encoded as `encodeURIComponent` encodes it, without its
 * `URIError` on a lone surrogate: a lone surrogate (U+D800–U+DFFF without its
 * pair) is written as the three bytes WTF-8 gives it (`%ED%A0%80` for U+D800).
 * Those bytes never occur in the UTF-8 of a well-formed string, so two different
 * scopes never share an encoding, and a well-formed scope keeps the encoding it
 * always had. The result is ASCII without `:`. Never throws.
 */
export function encodeScope(value: string): string {
  const scope = typeof value === 'string' ? value : String(value); // as encodeURIComponent converts it
  let out = '';
  let run = 0; // start of the well-formed run not yet written
  for (let i = 0; i < scope.length; i++) {
    const unit = scope.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = scope.charCodeAt(i + 1);
    if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      i++; // a well-formed pair
      continue;
    }
    out += encodeURIComponent(scope.slice(run, i));
    out +=
      percentByte(0xe0 | (unit >> 12)) +
      percentByte(0x80 | ((unit >> 6) & 0x3f)) +
      percentByte(0x80 | (unit & 0x3f));
    run = i + 1;
  }
  return out + encodeURIComponent(scope.slice(run));
}
