/**
 * HTML to text through htmlparser2's tokenizer (no DOM is built, so a huge
 * or deeply nested page costs memory in proportion to its text only).
 * Script, style and other non-content elements are dropped with everything
 * inside them; block elements end a line; entities are decoded. Nothing of
 * the markup (attributes, comments, URLs) reaches the text.
 */
import { Parser } from "htmlparser2";

/** Elements whose content is not document text. */
const SKIPPED = new Set(["script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math", "head", "select", "canvas"]);
/** Elements that break lines. */
const BLOCK = new Set([
  "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer", "nav", "aside", "main",
  "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "dd", "dt", "dl", "figure", "figcaption", "form", "fieldset", "address", "details", "summary", "caption", "title",
]);
const CELL = new Set(["td", "th"]);

export function htmlToText(html: string, maxChars: number): { text: string; truncated: boolean } {
  const out: string[] = [];
  let length = 0;
  let truncated = false;
  // Depth inside skipped elements; a <title> inside <head> is kept as the document's first line.
  let skip = 0;
  let inTitle = false;
  const push = (s: string) => {
    if (truncated) return;
    if (length + s.length > maxChars) {
      out.push(s.slice(0, maxChars - length));
      truncated = true;
      parser.pause();
      return;
    }
    out.push(s);
    length += s.length;
  };
  const parser = new Parser(
    {
      onopentagname(name) {
        if (name === "title") inTitle = true;
        if (SKIPPED.has(name)) skip++;
        if (skip === 0 && BLOCK.has(name)) push("\n");
      },
      onclosetag(name, implied) {
        if (name === "title") {
          inTitle = false;
          push("\n\n");
        }
        if (SKIPPED.has(name)) skip = Math.max(0, skip - 1);
        else if (skip === 0 && BLOCK.has(name)) push(name === "p" || /^h[1-6]$/.test(name) ? "\n\n" : "\n");
        else if (skip === 0 && CELL.has(name)) push("\t");
        void implied;
      },
      ontext(text) {
        if (skip === 0 || inTitle) push(text.replace(/\s+/g, " "));
      },
    },
    { decodeEntities: true, lowerCaseTags: true, recognizeSelfClosing: true },
  );
  parser.write(html);
  if (!truncated) parser.end();
  const text = out
    .join("")
    .split("\n")
    .map((l) => l.trim())
    .join("\n");
  return { text, truncated };
}
