/**
 * A list filter as a store applies it: a parameterised WHERE condition and ORDER BY over the store's
 * own columns, plus the window the filter asked for. Built from the request by http/ziti-filter.ts.
 */
export interface SqlFilter {
  where: string;
  params: unknown[];
  orderBy: string;
  skip?: number;
  limit?: number;
}
