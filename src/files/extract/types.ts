/** What text extraction reads and produces (src/files/extract/). */

/** The formats whose text the assistant reads. Images and anything else are not extracted. */
export type ExtractKind = "text" | "markdown" | "csv" | "json" | "html" | "pdf";

/** A stretch of a document's text: one per PDF page, one for the whole of any other format. */
export interface TextSection {
  /** 1-based page number (PDF), null where the format has no pages. */
  page: number | null;
  text: string;
}

export interface ExtractedText {
  sections: TextSection[];
  /** Characters over all sections. */
  chars: number;
  /** Pages in the file (PDF), or null. */
  pageCount: number | null;
  /** A limit (characters or pages) cut the text short. */
  truncated: boolean;
}

/** Bounds that keep one hostile file from costing more than its share. */
export interface ExtractLimits {
  /** Characters kept over the whole document. */
  maxChars: number;
  /** PDF pages read. */
  maxPages: number;
  /** JSON nesting followed; deeper values are summarised. */
  maxDepth: number;
}

/** The content type an attachment was stored with (sniffed at upload) decides how it is read. */
export function extractionKind(contentType: string): ExtractKind | null {
  const base = contentType.split(";", 1)[0]!.trim().toLowerCase();
  switch (base) {
    case "text/plain":
      return "text";
    case "text/markdown":
    case "text/x-markdown":
      return "markdown";
    case "text/csv":
      return "csv";
    case "application/json":
      return "json";
    case "text/html":
    case "application/xhtml+xml":
      return "html";
    case "application/pdf":
      return "pdf";
    default:
      return null;
  }
}

/** Thrown for a file that cannot be read as its kind (corrupt, encrypted, not text). */
export class ExtractionError extends Error {
  constructor(
    message: string,
    readonly reason: "unreadable" | "timeout" | "too_large" | "crashed",
  ) {
    super(message);
    this.name = "ExtractionError";
  }
}
