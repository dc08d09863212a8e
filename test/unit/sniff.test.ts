import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { cleanFileName, sniff, TextCheck } from "../../src/files/sniff.js";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("sniff", () => {
  it("takes binary formats from their magic numbers, whatever the name says", async () => {
    const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: "#fff" } }).png().toBuffer();
    expect(await sniff(png, true, "notes.txt")).toEqual({ contentType: "image/png", text: false });
    expect(await sniff(bytes("%PDF-1.7\n%\u00e2\u00e3\n1 0 obj\n"), true, "x.md")).toMatchObject({ contentType: "application/pdf" });
  });

  it("names text by its extension only once the bytes are text", async () => {
    expect(await sniff(bytes("a,b\n1,2\n"), true, "t.csv")).toEqual({ contentType: "text/csv", text: true });
    expect(await sniff(bytes("# title"), true, "readme.MD")).toEqual({ contentType: "text/markdown", text: true });
    expect(await sniff(bytes("{\"a\":1}"), true, "x.json")).toEqual({ contentType: "application/json", text: true });
    expect(await sniff(bytes("plain words"), true, "photo.png")).toEqual({ contentType: "text/plain", text: true });
    expect(await sniff(bytes("  <!DOCTYPE html><p>hi"), true, "a.txt")).toEqual({ contentType: "text/html", text: true });
  });

  it("calls bytes that are neither a known format nor UTF-8 octet-stream", async () => {
    expect(await sniff(new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]), true, "a.txt")).toEqual({ contentType: "application/octet-stream", text: false });
    expect(await sniff(bytes("text with a NUL \u0000 inside"), true, "a.txt")).toMatchObject({ contentType: "application/octet-stream" });
  });
});

describe("TextCheck", () => {
  it("accepts a character split across chunks and refuses a cut one at the end", () => {
    const euro = bytes("€"); // e2 82 ac
    const ok = new TextCheck();
    expect(ok.push(euro.subarray(0, 1))).toBe(true);
    expect(ok.push(euro.subarray(1))).toBe(true);
    expect(ok.end()).toBe(true);
    const cut = new TextCheck();
    expect(cut.push(euro.subarray(0, 2))).toBe(true);
    expect(cut.end()).toBe(false);
  });

  it("refuses invalid UTF-8 and NUL, and stays refused", () => {
    const c = new TextCheck();
    expect(c.push(new Uint8Array([0xff]))).toBe(false);
    expect(c.push(bytes("fine"))).toBe(false);
    expect(new TextCheck().push(new Uint8Array([0x61, 0x00]))).toBe(false);
  });
});

describe("cleanFileName", () => {
  it("keeps the base name without control characters or paths", () => {
    expect(cleanFileName("../../etc/passwd")).toBe("passwd");
    expect(cleanFileName("C:\\Users\\me\\report.pdf")).toBe("report.pdf");
    expect(cleanFileName("a\u0000b\nc.txt")).toBe("abc.txt");
    expect(cleanFileName("..")).toBe("file");
    expect(cleanFileName(undefined)).toBe("file");
    expect(cleanFileName("x".repeat(300)).length).toBe(200);
  });
});
