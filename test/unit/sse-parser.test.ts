import { describe, expect, it } from "vitest";
import { SseParser } from "../../src/llm/sse-http.js";

describe("SseParser", () => {
  it("dispatches an event at each blank line, with LF or CRLF line ends", () => {
    const p = new SseParser();
    expect(p.push('data: {"a":1}\n\ndata: {"b":2}\r\n\r\n')).toEqual([
      { event: null, data: '{"a":1}' },
      { event: null, data: '{"b":2}' },
    ]);
  });

  it("keeps a line split across body pieces until it is complete", () => {
    const p = new SseParser();
    expect(p.push("da")).toEqual([]);
    expect(p.push('ta: {"x"')).toEqual([]);
    expect(p.push(':"y z"}\r')).toEqual([]);
    expect(p.push("\n\r\n")).toEqual([{ event: null, data: '{"x":"y z"}' }]);
  });

  it("joins multi-line data, reads the event name, skips comments and unknown fields", () => {
    const p = new SseParser();
    expect(p.push(": keep-alive\nevent: error\nid: 7\ndata: first\ndata:second\n\n")).toEqual([{ event: "error", data: "first\nsecond" }]);
    // The event name does not carry over to the next event.
    expect(p.push("data: [DONE]\n\n")).toEqual([{ event: null, data: "[DONE]" }]);
  });

  it("dispatches nothing for a blank line without data", () => {
    const p = new SseParser();
    expect(p.push("\n\n: ping\n\n")).toEqual([]);
  });
});
