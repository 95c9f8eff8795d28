import {
  canonicalDigest,
  canonicalDomainTree,
  firstChild,
  textOf,
  type XmlElement,
} from './canonical-xml.js';

/**
 * A domain definition (libvirt domain XML), parsed once, on first use, and passed along: the start
 * check reads its uuid and name, the signature service its artifacts and config digest.
 */
export class DomainDefinition {
  private parsed?: { tree: XmlElement } | { error: unknown };

  constructor(readonly xml: string) {}

  /** The canonical tree (volatile parts removed). Throws when the XML is not a domain definition. */
  get tree(): XmlElement {
    if (!this.parsed) {
      try {
        this.parsed = { tree: canonicalDomainTree(this.xml) };
      } catch (error) {
        this.parsed = { error };
      }
    }
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
    return canonicalDigest(this.tree);
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
