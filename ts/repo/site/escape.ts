/**
 * Escaping for the browse site's generated files. `scriptJson` turns JSON text into text that is
 * safe to place inside a JavaScript file, and `htmlText` turns any string into safe HTML text or
 * attribute content. Both produce pure ASCII, so a server that labels the files with the wrong
 * charset cannot garble them. This module does not validate JSON shapes or build any page.
 */

const hex4 = (code: number): string => `\\u${code.toString(16).padStart(4, '0')}`;

/**
 * Escapes valid JSON text for a script: `<`, `>`, `&`, U+2028, U+2029 and every other non-ASCII
 * UTF-16 unit become `\uXXXX`. In valid JSON these characters only occur inside strings, where the
 * escape means the same character, so the value is unchanged and the text cannot close a
 * `<script>` element or break a JavaScript string. The caller must pass valid JSON.
 */
export function scriptJson(jsonText: string): string {
  return jsonText.replace(/[<>&\u007f-\uffff]/g, (c) => hex4(c.charCodeAt(0)));
}

/** `JSON.stringify` of a value, escaped for a script (see `scriptJson`). */
export function scriptValue(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError('scriptValue: value has no JSON form');
  return scriptJson(text);
}

/**
 * HTML text or double- or single-quoted attribute content: markup characters and non-ASCII code
 * points become character references; control characters (other than tab, LF and CR) and lone
 * surrogates become U+FFFD.
 */
export function htmlText(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0xfffd;
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '"') out += '&quot;';
    else if (ch === "'") out += '&#39;';
    else if ((code < 0x20 && ch !== '\t' && ch !== '\n' && ch !== '\r') || code === 0x7f) out += '&#xfffd;';
    else if (code >= 0xd800 && code <= 0xdfff) out += '&#xfffd;';
    else if (code > 0x7e) out += `&#x${code.toString(16)};`;
    else out += ch;
  }
  return out;
}
