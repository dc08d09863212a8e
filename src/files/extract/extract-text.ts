/** Reads the text of one file of a known kind, within limits (the extraction worker runs this). */
import { csvToText } from "./csv.js";
import { htmlToText } from "./html.js";
import { jsonToText } from "./json.js";
import { pdfToSections } from "./pdf.js";
import { cap, cleanText, decodeText } from "./text.js";
import type { ExtractedText, ExtractKind, ExtractLimits, TextSection } from "./types.js";

export async function extractText(kind: ExtractKind, bytes: Uint8Array, limits: ExtractLimits): Promise<ExtractedText> {
  if (kind === "pdf") {
    const pdf = await pdfToSections(bytes, limits);
    const sections = pdf.sections.map((s) => ({ page: s.page, text: cleanText(s.text) }));
    return done(sections, pdf.pageCount, pdf.truncated);
  }
  // Decoding is bounded too: a text file holds at most about four bytes per kept character.
  const decoded = decodeText(bytes.length > limits.maxChars * 4 ? bytes.subarray(0, limits.maxChars * 4) : bytes);
  const cut = bytes.length > limits.maxChars * 4;
  let r: { text: string; truncated: boolean };
  switch (kind) {
    case "text":
    case "markdown":
      r = cap(decoded, limits.maxChars);
      break;
    case "csv":
      r = csvToText(decoded, limits.maxChars);
      break;
    case "json":
      r = jsonToText(decoded, limits.maxChars, limits.maxDepth);
      break;
    case "html":
      r = htmlToText(decoded, limits.maxChars);
      break;
  }
  return done([{ page: null, text: cleanText(r.text) }], null, r.truncated || cut);
}

function done(sections: TextSection[], pageCount: number | null, truncated: boolean): ExtractedText {
  const kept = sections.filter((s) => s.text.length > 0);
  return { sections: kept, chars: kept.reduce((n, s) => n + s.text.length, 0), pageCount, truncated };
}
