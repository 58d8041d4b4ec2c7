/**
 * Text for the commands a message suggests typing.
 * @module
 */

/** `text` as one POSIX shell word: as it is when nothing in it is special, else single-quoted. */
export function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
