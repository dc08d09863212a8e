/**
 * PDF text through Mozilla's PDF.js (pdfjs-dist, legacy build for Node), page
 * by page, up to the page and character limits. Only the text layer is read:
 * no rendering, no fonts turned into code (isEvalSupported false), no
 * scripts, no network (character maps come from the package's own folder).
 * Runs inside the extraction worker (extract-worker.ts), whose time and
 * memory bounds are what stop a hostile file.
 */
import { createRequire } from "node:module";
import path from "node:path";
import type { TextSection } from "./types.js";

interface TextItemLike {
  str?: string;
  hasEOL?: boolean;
}

export async function pdfToSections(
  data: Uint8Array,
  limits: { maxChars: number; maxPages: number },
): Promise<{ sections: TextSection[]; pageCount: number; truncated: boolean }> {
  const pdfjs = await import("pdfjs-dist/legacy/build/pdf.mjs");
  const root = path.dirname(createRequire(import.meta.url).resolve("pdfjs-dist/package.json"));
  const task = pdfjs.getDocument({
    // A plain copy: PDF.js refuses Buffers and may take ownership of what it is given.
    data: new Uint8Array(data),
    isEvalSupported: false,
    disableFontFace: true,
    useSystemFonts: false,
    enableXfa: false,
    stopAtErrors: false,
    // Images are never decoded for text; this bounds what a page may ask for anyway.
    maxImageSize: 1 << 20,
    cMapUrl: `${path.join(root, "cmaps")}/`,
    cMapPacked: true,
    standardFontDataUrl: `${path.join(root, "standard_fonts")}/`,
    verbosity: 0,
  });
  let doc;
  try {
    doc = await task.promise;
  } catch (err) {
    await task.destroy().catch(() => undefined);
    const name = (err as Error).name;
    throw new Error(name === "PasswordException" ? "the PDF is encrypted with a password" : `not a readable PDF: ${(err as Error).message}`);
  }
  try {
    const sections: TextSection[] = [];
    let chars = 0;
    let truncated = doc.numPages > limits.maxPages;
    const last = Math.min(doc.numPages, limits.maxPages);
    for (let n = 1; n <= last; n++) {
      const page = await doc.getPage(n);
      const content = await page.getTextContent({ includeMarkedContent: false, disableNormalization: false });
      page.cleanup();
      let text = "";
      for (const item of content.items as TextItemLike[]) {
        if (typeof item.str !== "string") continue;
        text += item.str;
        if (item.hasEOL) text += "\n";
      }
      if (chars + text.length > limits.maxChars) {
        text = text.slice(0, limits.maxChars - chars);
        truncated = true;
      }
      chars += text.length;
      sections.push({ page: n, text });
      if (chars >= limits.maxChars) {
        truncated = truncated || n < doc.numPages;
        break;
      }
    }
    return { sections, pageCount: doc.numPages, truncated };
  } finally {
    await doc.destroy().catch(() => undefined);
  }
}
