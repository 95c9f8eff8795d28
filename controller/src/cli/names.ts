// Names, ids and UUIDs, all accepted: a name is resolved through the list APIs (the routes take ids),
// and tables show names where the CLI can learn them. Lists are fetched once per command.
import { CliError, type Client } from './client.js';
import { loadConfig } from './config.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type Kind = 'instance' | 'identity' | 'node';

interface Entry {
  id: string;
  name: string;
  /** Shown next to candidates when a name is ambiguous. */
  detail?: string;
}

export class Names {
  private lists = new Map<Kind, Promise<Entry[]>>();

  constructor(private readonly client: Client) {}

  private list(kind: Kind): Promise<Entry[]> {
    let p = this.lists.get(kind);
    if (!p) this.lists.set(kind, (p = LISTS[kind](this.client)));
    return p;
  }

  /** The id for a name, id or UUID; an unknown or ambiguous name is an error naming the candidates. */
  async resolve(kind: Kind, ref: string): Promise<string> {
    // A UUID is an id already: no list needed (and users may not list what they may reach by id).
    if (kind !== 'node' && UUID.test(ref)) return kind === 'instance' ? ref.toLowerCase() : ref;
    const all = await this.list(kind);
    const byId = all.find((e) => e.id === ref);
    if (byId) return byId.id;
    const named = all.filter((e) => e.name === ref);
    if (named.length === 1) return named[0]!.id;
    if (named.length === 0) throw new CliError(`no ${kind} named ${ref}`);
    const candidates = named.map((e) => `${e.id}${e.detail ? ` (${e.detail})` : ''}`).join(', ');
    throw new CliError(`more than one ${kind} is named ${ref}: ${candidates}; give the id`);
  }

  /** The name to show for an id; the id itself when it is unknown or the list is not ours to read. */
  async label(kind: Kind, id: unknown): Promise<string> {
    if (id === null || id === undefined || id === '') return '';
    const all = await this.list(kind).catch(() => [] as Entry[]);
    const hit = all.find((e) => e.id === String(id));
    if (hit) return hit.name;
    const me = loadConfig();
    if (kind === 'identity' && me?.identityId === id && me.username) return me.username;
    return String(id);
  }

  /** Rows with some columns' ids replaced by names (for tables only; -o json/yaml keep the ids). */
  async labelled<T extends Record<string, unknown>>(
    rows: T[],
    columns: Record<string, [Kind, keyof T & string]>,
  ): Promise<Array<T & Record<string, string>>> {
    return Promise.all(
      rows.map(async (r) => {
        const extra: Record<string, string> = {};
        for (const [col, [kind, from]] of Object.entries(columns))
          extra[col] = await this.label(kind, r[from]);
        return { ...r, ...extra };
      }),
    );
  }
}

async function paged<T>(fetchPage: (offset: number) => Promise<{ rows: T[]; total: number }>): Promise<T[]> {
  const out: T[] = [];
  for (;;) {
    const { rows, total } = await fetchPage(out.length);
    out.push(...rows);
    if (rows.length === 0 || out.length >= total) return out;
  }
}

const LISTS: Record<Kind, (client: Client) => Promise<Entry[]>> = {
  instance: (client) =>
    paged(async (offset) => {
      const r = (await client.call('GET', `/v1/instances?limit=1000&offset=${offset}`)).body;
      return {
        total: r.total,
        rows: (r.instances as any[]).map((i) => ({
          id: i.server_id,
          name: i.instance_name,
          detail: [i.state, i.ip_address].filter(Boolean).join(', '),
        })),
      };
    }),
  identity: (client) =>
    paged(async (offset) => {
      const r = (await client.call('GET', `/identities?limit=500&offset=${offset}`)).body;
      return {
        total: r.meta?.pagination?.totalCount ?? 0,
        rows: (r.data as any[]).map((i) => ({ id: i.id, name: i.name, detail: i.role })),
      };
    }),
  node: async (client) =>
    ((await client.call('GET', '/v1/nodes')).body.nodes as any[]).map((n) => ({
      id: String(n.id),
      name: n.name,
      detail: n.hostname,
    })),
};
