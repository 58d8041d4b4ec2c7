/**
 * `WWW-Authenticate` parsing (RFC 9110 §11.6.1): several challenges in one header or several headers,
 * parameters as tokens or quoted strings that may hold commas and escaped quotes.
 * @module
 */

export interface Challenge {
  /** Lowercased: `basic`, `bearer`. */
  scheme: string;
  /** Parameter names lowercased: `realm`, `service`, `scope`, `error`. */
  params: Record<string, string>;
}

/** Parses every challenge in the header value(s); unparseable trailing junk is ignored. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  return values.flatMap(parseOne);
}

function parseOne(text: string): Challenge[] {
  const challenges: Challenge[] = [];
  let pos = 0;
  const skip = (chars: string) => {
    while (pos < text.length && chars.includes(text[pos]!)) pos++;
  };
  const token = (): string => {
    const start = pos;
    while (pos < text.length && !' \t,='.includes(text[pos]!)) pos++;
    return text.slice(start, pos);
  };
  while (pos < text.length) {
    skip(' \t,');
    const scheme = token();
    if (scheme === '') break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      skip(' \t');
      const mark = pos;
      const key = token();
      skip(' \t');
      if (key === '' || text[pos] !== '=') {
        // Not a parameter: the start of the next challenge (token68 forms are not used by registries).
        pos = mark;
        break;
      }
      pos++; // '='
      skip(' \t');
      let value = '';
      if (text[pos] === '"') {
        pos++;
        while (pos < text.length && text[pos] !== '"') {
          if (text[pos] === '\\' && pos + 1 < text.length) pos++;
          value += text[pos];
          pos++;
        }
        pos++; // closing quote
      } else {
        const start = pos;
        while (pos < text.length && !' \t,'.includes(text[pos]!)) pos++;
        value = text.slice(start, pos);
      }
      challenge.params[key.toLowerCase()] = value;
      skip(' \t');
      if (text[pos] === ',') pos++;
    }
  }
  return challenges;
}

/** The challenge to answer: Bearer when offered (it is what registries mean), else Basic. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}
