/** One word for POSIX sh, whatever it contains: single-quoted, each ' written as '\''. */
export const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
