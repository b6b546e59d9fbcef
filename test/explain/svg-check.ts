/** A small XML well-formedness checker for the SVG plots (tests only): parses or throws. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ENTITY = /&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;

function checkText(text: string, where: string): string {
  if (/[<>]/.test(text)) throw new Error(`xml: raw '<' or '>' in ${where}`);
  const stripped = text.replace(ENTITY, '');
  if (stripped.includes('&')) throw new Error(`xml: unescaped '&' in ${where}`);
  return text.replace(ENTITY, (_, e: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[e] ?? '?');
}

/** Parses `xml` (elements, attributes in double quotes, text; no comments/CDATA); throws on malformed input. */
export function parseXml(xml: string): XmlElement {
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const stack = [root];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (text.trim()) stack[stack.length - 1]!.text += checkText(text, `text of <${stack[stack.length - 1]!.name}>`);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    if (!m) throw new Error(`xml: malformed tag at offset ${lt}: ${xml.slice(lt, lt + 40)}`);
    const [, close, name, attrText, selfClose] = m;
    if (close) {
      const open = stack.pop()!;
      if (open.name !== name || stack.length === 0) throw new Error(`xml: </${name}> closes <${open.name}>`);
    } else {
      const attrs: Record<string, string> = {};
      for (const a of attrText!.matchAll(/([\w:-]+)="([^"]*)"/g)) {
        if (a[1]! in attrs) throw new Error(`xml: duplicate attribute ${a[1]} on <${name}>`);
        attrs[a[1]!] = checkText(a[2]!, `attribute ${a[1]} of <${name}>`);
      }
      const el: XmlElement = { name: name!, attrs, children: [], text: '' };
      stack[stack.length - 1]!.children.push(el);
      if (!selfClose) stack.push(el);
    }
    i = tag.lastIndex;
  }
  if (stack.length !== 1) throw new Error(`xml: <${stack[stack.length - 1]!.name}> is never closed`);
  if (root.children.length !== 1) throw new Error(`xml: ${root.children.length} root elements`);
  return root.children[0]!;
}

/** All descendants named `name` whose class list contains `cls` (when given). */
export function findAll(el: XmlElement, name: string, cls?: string): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    if (e.name === name && (!cls || (e.attrs['class'] ?? '').split(' ').includes(cls))) out.push(e);
    e.children.forEach(walk);
  };
  walk(el);
  return out;
}

/** Parses an SVG document and checks its root. */
export function parseSvg(svg: string): XmlElement {
  const root = parseXml(svg);
  if (root.name !== 'svg' || root.attrs['xmlns'] !== 'http://www.w3.org/2000/svg') throw new Error('xml: root is not an <svg> in the SVG namespace');
  for (const k of ['width', 'height', 'viewBox']) if (!root.attrs[k]) throw new Error(`svg: missing ${k}`);
  return root;
}
