/**
 * CSV to text a retriever can use: each record becomes one line naming its
 * columns ("name: Ada; city: Oslo"), so a passage cut from the middle of a
 * table still says what its numbers are. RFC 4180 quoting; the delimiter is
 * the one of comma, semicolon and tab that the header line holds most of.
 */

export function csvToText(input: string, maxChars: number): { text: string; truncated: boolean } {
  const delimiter = guessDelimiter(input);
  const lines: string[] = [];
  let length = 0;
  let header: string[] | undefined;
  let truncated = false;
  for (const record of records(input, delimiter)) {
    if (record.every((f) => f.trim() === "")) continue;
    if (!header) {
      header = record.map((h, i) => h.trim() || `column ${i + 1}`);
      continue;
    }
    const line = record
      .map((value, i) => [header![i] ?? `column ${i + 1}`, value.replace(/\s+/g, " ").trim()] as const)
      .filter(([, v]) => v !== "")
      .map(([k, v]) => `${k}: ${v}`)
      .join("; ");
    if (length + line.length + 1 > maxChars) {
      truncated = true;
      break;
    }
    lines.push(line);
    length += line.length + 1;
  }
  // A file of one line is a header with no rows: its words are still the text.
  if (lines.length === 0 && header) return { text: header.join(", ").slice(0, maxChars), truncated };
  return { text: lines.join("\n"), truncated };
}

function guessDelimiter(input: string): string {
  const first = input.slice(0, input.indexOf("\n") === -1 ? 4096 : Math.min(input.indexOf("\n"), 4096));
  let best = ",";
  let most = 0;
  for (const d of [",", ";", "\t"]) {
    const n = first.split(d).length - 1;
    if (n > most) {
      most = n;
      best = d;
    }
  }
  return best;
}

/** Records of RFC 4180 CSV; a quote left open runs to the end of the input. */
function* records(input: string, delimiter: string): Generator<string[]> {
  let field = "";
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (quoted) {
      if (c === '"') {
        if (input[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === delimiter) {
      record.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && input[i + 1] === "\n") i++;
      record.push(field);
      yield record;
      record = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || record.length > 0) {
    record.push(field);
    yield record;
  }
}
