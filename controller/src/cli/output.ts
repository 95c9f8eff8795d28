/** Human output: aligned tables with upper-case headers, local ISO times, `-` for nothing. */

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;
/** The Sign API's dates (RFC 1123): `Mon, 30 Nov 2026 21:30:05 GMT`. */
const HTTP_TIME = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const pad = (n: number) => String(n).padStart(2, '0');

/** 2026-11-30T21:30:05.123Z → `2026-11-30 22:30:05` in the local time zone. */
export function localTime(value: string | Date): string {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (typeof v === 'string') return ISO_TIME.test(v) || HTTP_TIME.test(v) ? localTime(v) : v;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** `createdAt` and `created_at` both head their column as CREATED_AT. */
export const header = (key: string) => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const data = rows.map((r) => columns.map((c) => cell(r[c])));
  const heads = columns.map(header);
  const widths = heads.map((h, i) => Math.max(h.length, ...data.map((d) => d[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((s, i) => (i === cells.length - 1 ? s : s.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(heads), ...data.map(line)].join('\n') + '\n';
}

export function keyValues(obj: Record<string, unknown>, keys = Object.keys(obj)): string {
  const width = Math.max(...keys.map((k) => k.length));
  return keys.map((k) => `${`${k}:`.padEnd(width + 1)} ${cell(obj[k])}`).join('\n') + '\n';
}

export function progressBar(percent: number, width = 30): string {
  const p = Math.max(0, Math.min(100, Math.round(percent)));
  const filled = Math.round((p / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(p).padStart(3)}%`;
}
