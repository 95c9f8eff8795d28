// Canonical form of a libvirt domain definition: what the config digest is taken over.
//
// Input is the inactive XML. Volatile parts that libvirt fills in by itself are removed (the domain
// `id`, dynamic security labels, device aliases, autoport graphics ports, interface tap names,
// `<actual>` network details), so that they never make a definition look changed. Cosmetics do not
// count either: comments and whitespace-only text are dropped, text is trimmed, attributes are
// sorted by name, empty elements are always written `<x/>` and values are re-escaped one way.
// Element order is kept: it is meaningful in libvirt (disk order, boot order).
import { createHash } from 'node:crypto';
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
}
export type XmlNode = XmlElement | string;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  attributesGroupName: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  commentPropName: '#comment',
  // Entities are decoded here (decodeEntities), in one pass: the parser's own decoding leaves
  // numeric references alone, and a second pass over its output would decode `&amp;#38;` twice.
  processEntities: false,
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true,
});

type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, unknown> };

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z]+);/g, (whole, ref: string) => {
    if (ref[0] === '#') {
      const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp === 0) {
        throw new Error(`invalid XML: bad character reference ${whole}`);
      }
      return String.fromCodePoint(cp);
    }
    const v = NAMED[ref];
    if (v === undefined) throw new Error(`invalid XML: undefined entity ${whole}`);
    return v;
  });
}

function cdataText(nodes: unknown): string {
  return ((nodes as OrderedNode[]) ?? []).map((n) => String(n['#text'] ?? '')).join('');
}

function convert(node: OrderedNode): XmlNode | null {
  for (const key of Object.keys(node)) {
    if (key === ':@') continue;
    if (key === '#text') return decodeEntities(String(node[key] ?? ''));
    if (key === '#cdata') return cdataText(node[key]);
    if (key === '#comment' || key.startsWith('?') || key.startsWith('!')) return null;
    const attrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(node[':@'] ?? {})) attrs[k] = decodeEntities(String(v));
    const children: XmlNode[] = [];
    for (const child of (node[key] as OrderedNode[]) ?? []) {
      const c = convert(child);
      if (c === null) continue;
      // Text split by a dropped comment joins up again.
      const last = children[children.length - 1];
      if (typeof c === 'string' && typeof last === 'string') children[children.length - 1] = last + c;
      else children.push(c);
    }
    return { name: key, attrs, children };
  }
  return null;
}

/** Parses XML into a plain element tree (comments, declaration and processing instructions dropped). */
export function parseXml(xml: string): XmlElement {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    throw new Error(`invalid XML: ${valid.err.msg} (line ${valid.err.line}, col ${valid.err.col})`);
  }
  const roots = (parser.parse(xml) as OrderedNode[])
    .map(convert)
    .filter((n): n is XmlElement => n !== null && typeof n !== 'string');
  if (roots.length !== 1) throw new Error(`invalid XML: expected one root element, found ${roots.length}`);
  return roots[0]!;
}

/** Child elements of `el` named `name`. */
export function childElements(el: XmlElement, name?: string): XmlElement[] {
  return el.children.filter(
    (c): c is XmlElement => typeof c !== 'string' && (name === undefined || c.name === name),
  );
}

export function firstChild(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el ? childElements(el, name)[0] : undefined;
}

/** Trimmed text content of an element (direct text children only). */
export function textOf(el: XmlElement | undefined): string {
  if (!el) return '';
  return el.children
    .filter((c): c is string => typeof c === 'string')
    .join('')
    .trim();
}

/** Trims text, drops whitespace-only text, removes volatile parts. Returns a new tree. */
function normalise(el: XmlElement, parent: XmlElement | null, isRoot: boolean): XmlElement | null {
  const attrs = { ...el.attrs };
  if (isRoot && el.name === 'domain') delete attrs.id;
  if (el.name === 'seclabel' && attrs.type === 'dynamic') return null;
  if (el.name === 'alias' || el.name === 'actual') return null;
  if (el.name === 'graphics' && attrs.autoport === 'yes') {
    delete attrs.port;
    delete attrs.websocket;
    delete attrs.tlsPort;
  }
  const children: XmlNode[] = [];
  for (const c of el.children) {
    if (typeof c === 'string') {
      const t = c.trim();
      if (t) children.push(t);
      continue;
    }
    const n = normalise(c, el, false);
    if (n) children.push(n);
  }
  if (el.name === 'target' && parent?.name === 'interface') {
    delete attrs.dev; // tap device name (vnetN) chosen by libvirt
    if (Object.keys(attrs).length === 0 && children.length === 0) return null;
  }
  return { name: el.name, attrs, children };
}

const escText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escAttr = (s: string) =>
  escText(s).replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');

function serialise(el: XmlElement, out: string[]): void {
  out.push('<', el.name);
  for (const k of Object.keys(el.attrs).sort()) out.push(' ', k, '="', escAttr(el.attrs[k]!), '"');
  if (el.children.length === 0) {
    out.push('/>');
    return;
  }
  out.push('>');
  for (const c of el.children) {
    if (typeof c === 'string') out.push(escText(c));
    else serialise(c, out);
  }
  out.push('</', el.name, '>');
}

/** The canonical tree of a domain definition (volatile parts removed). */
export function canonicalDomainTree(xml: string): XmlElement {
  const root = parseXml(xml);
  if (root.name !== 'domain') throw new Error(`not a domain definition: root element <${root.name}>`);
  return normalise(root, null, true)!;
}

export function serialiseXml(el: XmlElement): string {
  const out: string[] = [];
  serialise(el, out);
  return out.join('');
}

/** The canonical serialisation of a domain definition: one line, no declaration. */
export function canonicalDomainXml(xml: string): string {
  return serialiseXml(canonicalDomainTree(xml));
}

/** 'sha256:<hex>' over the canonical serialisation (UTF-8). */
export function configDigest(xml: string): string {
  return canonicalDigest(canonicalDomainTree(xml));
}

/** configDigest of a canonical tree already parsed. */
export function canonicalDigest(tree: XmlElement): string {
  return 'sha256:' + createHash('sha256').update(serialiseXml(tree), 'utf8').digest('hex');
}
