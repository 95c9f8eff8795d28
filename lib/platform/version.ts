import { readFileSync } from 'node:fs';

/** The version in package.json (dist/lib/platform/ and lib/platform/ are both three levels below it). */
export const VERSION: string = JSON.parse(
  readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
).version;
