/**
 * Query handling for the lexical leg: related words to widen a question
 * (a paraphrase shares few words with what it asks about), and the time a
 * question points at ("in March", "last week").
 *
 * The related-word groups are this project's own short list of everyday
 * chat topics. They are a weak stand-in for an embedding model: expansions
 * score at half weight, so a question's own words always count for more.
 */

/** Words in one group are taken as related; a query word pulls in its group. */
const RELATED: readonly (readonly string[])[] = [
  ["dog", "puppy", "pup", "beagle", "labrador", "poodle", "terrier", "collie", "spaniel", "pet"],
  ["cat", "kitten", "tabby", "pet"],
  ["name", "named", "called", "call"],
  ["car", "vehicle", "hatchback", "sedan", "suv", "van", "truck"],
  ["doctor", "physician", "gp", "clinic", "dentist", "appointment"],
  ["job", "work", "employer", "office", "company", "position", "role"],
  ["salary", "pay", "paid", "income", "raise", "wage"],
  ["house", "flat", "apartment", "home", "rent", "landlord", "lease", "mortgage"],
  ["move", "moved", "moving", "relocate", "relocated"],
  ["trip", "travel", "holiday", "vacation", "flight", "flew", "journey"],
  ["allergy", "allergic", "intolerant", "intolerance", "react"],
  ["food", "eat", "dish", "meal", "cook", "cooking", "recipe", "dinner", "lunch"],
  ["favorite", "favourite", "love", "prefer", "best"],
  ["sister", "brother", "sibling", "mother", "mom", "mum", "father", "dad", "parent", "family"],
  ["wife", "husband", "partner", "spouse", "girlfriend", "boyfriend"],
  ["child", "kid", "son", "daughter", "children", "kids"],
  ["friend", "buddy", "mate", "pal"],
  ["birthday", "born", "birth"],
  ["phone", "mobile", "cell", "number"],
  ["password", "passcode", "pin", "code"],
  ["run", "running", "jog", "jogging", "marathon", "race"],
  ["sport", "gym", "workout", "exercise", "training", "fitness"],
  ["book", "novel", "reading", "read", "author"],
  ["film", "movie", "cinema", "watch", "watched"],
  ["music", "band", "song", "concert", "gig", "album"],
  ["instrument", "guitar", "piano", "violin", "cello", "drums"],
  ["learn", "learning", "study", "studying", "course", "class", "lesson"],
  ["language", "spanish", "french", "german", "japanese", "italian", "portuguese"],
  ["buy", "bought", "purchase", "purchased", "order", "ordered"],
  ["money", "cost", "price", "spent", "spend", "budget", "paid", "euros", "dollars"],
  ["sick", "ill", "flu", "cold", "fever", "unwell", "injury", "injured", "hurt"],
  ["bike", "bicycle", "cycling", "cycle"],
  ["garden", "plant", "plants", "grow", "growing", "seedlings", "vegetable"],
  ["hobby", "pastime", "weekend"],
  ["drink", "coffee", "tea", "beer", "wine"],
  ["wedding", "married", "marry", "engagement", "engaged"],
  ["school", "university", "college", "degree", "graduate", "graduated"],
  ["colleague", "coworker", "boss", "manager", "team"],
  ["city", "town", "live", "lives", "living"],
];

const byWord = new Map<string, Set<string>>();
for (const group of RELATED) {
  for (const w of group) {
    const set = byWord.get(w) ?? new Set<string>();
    for (const x of group) if (x !== w) set.add(x);
    byWord.set(w, set);
  }
}

/** Related words of the query's words that the query does not already hold, space-separated. */
export function relatedWords(query: string): string {
  const words = new Set(query.toLowerCase().match(/[a-z]+/g) ?? []);
  const out = new Set<string>();
  for (const w of words) {
    // "dog's" and "dogs" reach the group of "dog".
    const key = byWord.has(w) ? w : w.endsWith("s") && byWord.has(w.slice(0, -1)) ? w.slice(0, -1) : undefined;
    if (key === undefined) continue;
    for (const r of byWord.get(key)!) if (!words.has(r)) out.add(r);
  }
  return [...out].join(" ");
}

const MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

export interface TimeWindow {
  from: Date;
  to: Date;
}

/**
 * The window a question names, relative to `now`: "in <month>" (the latest
 * such month not after now), "last week", "last month", "yesterday". Null when
 * it names none. A bare "may" is read as a month only after "in".
 */
export function timeWindow(query: string, now: Date): TimeWindow | null {
  const q = query.toLowerCase();
  const day = 86_400_000;
  const startOfDay = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  if (/\byesterday\b/.test(q)) return { from: new Date(startOfDay - day), to: new Date(startOfDay) };
  if (/\blast week\b/.test(q)) return { from: new Date(startOfDay - 7 * day), to: now };
  if (/\blast month\b/.test(q)) return { from: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)), to: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)) };
  const m = /\b(?:in|during|back in)\s+(january|february|march|april|may|june|july|august|september|october|november|december)\b/.exec(q)
    ?? /\b(january|february|march|april|june|july|august|september|october|november|december)\b/.exec(q);
  if (!m) return null;
  const month = MONTHS.indexOf(m[1]!);
  let year = now.getUTCFullYear();
  if (month > now.getUTCMonth()) year--;
  return { from: new Date(Date.UTC(year, month, 1)), to: new Date(Date.UTC(year, month + 1, 1)) };
}
