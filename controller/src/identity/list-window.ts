import { compileFilter } from '../http/ziti-filter.js';
import { readPage } from '../http/pagination.js';
import type { ListWindow } from './store.js';
import * as wire from './wire.js';

/** Reads limit/offset/filter the OpenZiti way: query params, overridden by the filter's skip/limit. */
export function listWindow(query: unknown, fields: Record<string, string>): ListWindow {
  const filter = compileFilter((query as { filter?: string }).filter, fields);
  // The filter's own `skip`/`limit` win over the query parameters.
  const { limit, offset } = readPage(query, wire.PAGE, { offset: filter.skip, limit: filter.limit });
  return { filter, limit, offset };
}
