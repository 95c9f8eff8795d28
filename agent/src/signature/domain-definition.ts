import {
  canonicalDigest,
  canonicalDomainTree,
  firstChild,
  textOf,
  type XmlElement,
} from './canonical-xml.js';

type Parsed = { tree: XmlElement; digest?: string } | { error: unknown };

/**
 * The last few definitions parsed, by their exact text: a domain started again with the same XML
 * (what libvirt hands the hook at every start) is not parsed and canonicalised again. The trees are
 * only ever read.
 */
const recent = new Map<string, Parsed>();
const RECENT_MAX = 64;

function parse(xml: string): Parsed {
  const hit = recent.get(xml);
  if (hit) {
    recent.delete(xml); // most recently used last
    recent.set(xml, hit);
    return hit;
  }
  let parsed: Parsed;
  try {
    parsed = { tree: canonicalDomainTree(xml) };
  } catch (error) {
    parsed = { error };
  }
  recent.set(xml, parsed);
  if (recent.size > RECENT_MAX) recent.delete(recent.keys().next().value!);
  return parsed;
}

/**
 * A domain definition (libvirt domain XML), parsed once, on first use, and passed along: the start
 * check reads its uuid and name, the signature service its artifacts and config digest.
 */
export class DomainDefinition {
  private parsed?: Parsed;

  constructor(readonly xml: string) {}

  /** The canonical tree (volatile parts removed). Throws when the XML is not a domain definition. */
  get tree(): XmlElement {
    this.parsed ??= parse(this.xml);
    if ('error' in this.parsed) throw this.parsed.error;
    return this.parsed.tree;
  }

  /** The `<uuid>` (lower case); undefined when there is none or the XML is not a domain definition. */
  get uuid(): string | undefined {
    return this.field('uuid')?.toLowerCase();
  }

  /** The `<name>`; undefined when there is none or the XML is not a domain definition. */
  get name(): string | undefined {
    return this.field('name');
  }

  /** 'sha256:<hex>' over the canonical serialisation. */
  configDigest(): string {
    const tree = this.tree;
    const p = this.parsed as { tree: XmlElement; digest?: string };
    return (p.digest ??= canonicalDigest(tree));
  }

  private field(tag: string): string | undefined {
    let tree: XmlElement;
    try {
      tree = this.tree;
    } catch {
      return undefined;
    }
    const el = firstChild(tree, tag);
    return el ? textOf(el) || undefined : undefined;
  }
}
