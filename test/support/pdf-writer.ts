/**
 * A small PDF writer for tests and benchmarks: pages of text lines in the
 * standard Helvetica font (no embedded font), each page one content stream,
 * Flate-compressed or not, with a correct cross-reference table. Enough for
 * PDF.js to lay the text out as a real document's; no binary fixtures.
 *
 * `raw` options build hostile files: a page whose content stream is given
 * as bytes, extra objects, a truncated file.
 */
import { deflateSync } from "node:zlib";
import { seededRandom } from "../../bench/corpus.js";

export interface PdfOptions {
  /** Flate-compress the content streams (default true, as real writers do). */
  compress?: boolean;
  /** Per page, replaces the content stream built from its lines. */
  rawContent?: (pageIndex: number) => Buffer | undefined;
  /** Document information dictionary /Title. */
  title?: string;
}

/** Latin-1 text in a PDF string literal: \, ( and ) escaped; characters beyond Latin-1 become "?". */
function pdfString(s: string): string {
  let out = "(";
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === "\\" || ch === "(" || ch === ")") out += `\\${ch}`;
    else if (code < 32 || code > 255) out += code === 9 ? " " : "?";
    else out += ch;
  }
  return `${out})`;
}

function pageContent(lines: readonly string[]): Buffer {
  const body = ["BT", "/F1 11 Tf", "14 TL", "56 780 Td"];
  for (const line of lines) body.push(`${pdfString(line)} Tj`, "T*");
  body.push("ET");
  return Buffer.from(body.join("\n"), "latin1");
}

/** A PDF whose page i shows `pages[i]`, one string per line. */
export function writePdf(pages: readonly (readonly string[])[], options: PdfOptions = {}): Buffer {
  const compress = options.compress ?? true;
  const objects: Buffer[] = [];
  const add = (body: Buffer | string): number => {
    objects.push(typeof body === "string" ? Buffer.from(body, "latin1") : body);
    return objects.length;
  };
  const catalog = add(""); // filled in below, once the page tree's number is known
  const pagesObj = add("");
  const font = add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
  const kids: number[] = [];
  pages.forEach((lines, i) => {
    let content = options.rawContent?.(i) ?? pageContent(lines);
    let filter = "";
    if (compress) {
      content = deflateSync(content);
      filter = " /Filter /FlateDecode";
    }
    const stream = add(
      Buffer.concat([Buffer.from(`<< /Length ${content.length}${filter} >>\nstream\n`, "latin1"), content, Buffer.from("\nendstream", "latin1")]),
    );
    kids.push(
      add(`<< /Type /Page /Parent ${pagesObj} 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 ${font} 0 R >> >> /Contents ${stream} 0 R >>`),
    );
  });
  objects[catalog - 1] = Buffer.from(`<< /Type /Catalog /Pages ${pagesObj} 0 R >>`, "latin1");
  objects[pagesObj - 1] = Buffer.from(`<< /Type /Pages /Kids [${kids.map((k) => `${k} 0 R`).join(" ")}] /Count ${kids.length} >>`, "latin1");
  const info = options.title === undefined ? undefined : add(`<< /Title ${pdfString(options.title)} >>`);

  const chunks: Buffer[] = [Buffer.from("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "latin1")];
  let offset = chunks[0]!.length;
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(offset);
    const obj = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`, "latin1"), body, Buffer.from("\nendobj\n", "latin1")]);
    chunks.push(obj);
    offset += obj.length;
  });
  const xref = [`xref\n0 ${objects.length + 1}\n`, "0000000000 65535 f \n", ...offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`)].join("");
  const trailer = `trailer\n<< /Size ${objects.length + 1} /Root ${catalog} 0 R${info ? ` /Info ${info} 0 R` : ""} >>\nstartxref\n${offset}\n%%EOF\n`;
  chunks.push(Buffer.from(xref + trailer, "latin1"));
  return Buffer.concat(chunks);
}

/** Deterministic filler prose for `n` pages of about `linesPerPage` lines, with `marker(i)` on page i when given. */
export function fillerPages(n: number, linesPerPage = 40, marker?: (page: number) => string | undefined): string[][] {
  const words = ["ledger", "harbour", "quarterly", "signal", "northern", "copper", "review", "budget", "vessel", "meadow", "archive", "policy", "engine", "orchard", "summit", "lantern"];
  const random = seededRandom(7);
  const next = () => Math.floor(random() * 1_000_000);
  const pages: string[][] = [];
  for (let p = 0; p < n; p++) {
    const lines: string[] = [];
    const m = marker?.(p);
    if (m) lines.push(m);
    while (lines.length < linesPerPage) {
      const len = 8 + (next() % 6);
      const line = Array.from({ length: len }, () => words[next() % words.length]).join(" ");
      lines.push(`${line[0]!.toUpperCase()}${line.slice(1)}.`);
    }
    pages.push(lines);
  }
  return pages;
}
