/**
 * JSON to text: one line per leaf value, named by its path
 * ("orders[2].customer.city: Oslo"), so a passage keeps what its values
 * mean. The walk is iterative with a depth bound: a hostile file nested a
 * million levels deep neither overflows the stack nor produces a million-part
 * path. Input that is not valid JSON is read as plain text.
 */

export function jsonToText(input: string, maxChars: number, maxDepth: number): { text: string; truncated: boolean } {
  let value: unknown;
  try {
    value = JSON.parse(input);
  } catch {
    return { text: input.slice(0, maxChars), truncated: input.length > maxChars };
  }
  const lines: string[] = [];
  let length = 0;
  const stack: { path: string; value: unknown; depth: number }[] = [{ path: "", value, depth: 0 }];
  while (stack.length > 0) {
    const { path, value: v, depth } = stack.pop()!;
    let line: string | undefined;
    if (v !== null && typeof v === "object") {
      const entries = Array.isArray(v) ? v.map((x, i) => [`[${i}]`, x] as const) : Object.entries(v).map(([k, x]) => [path ? `.${k}` : k, x] as const);
      if (entries.length === 0) continue;
      if (depth >= maxDepth) {
        line = `${path || "(root)"}: (${Array.isArray(v) ? `${v.length} items` : `${entries.length} fields`} nested deeper than ${maxDepth} levels)`;
      } else {
        // Reversed onto the stack, so they come off in document order.
        for (let i = entries.length - 1; i >= 0; i--) stack.push({ path: path + entries[i]![0], value: entries[i]![1], depth: depth + 1 });
        continue;
      }
    } else {
      const text = typeof v === "string" ? v.replace(/\s+/g, " ").trim() : String(v);
      line = path ? `${path}: ${text}` : text;
    }
    if (length + line.length + 1 > maxChars) return { text: lines.join("\n"), truncated: true };
    lines.push(line);
    length += line.length + 1;
  }
  return { text: lines.join("\n"), truncated: false };
}
