/**
 * Writes bench/data/memory-eval.json: one user's chat history over a
 * simulated year (24 sessions, two a month) and questions whose evidence
 * messages are known, in five categories:
 *
 *   single      one fact, asked with its identifying word and common words
 *   distractor  one fact, asked with common words that other messages repeat
 *               (a ranker without inverse document frequency prefers those)
 *   paraphrase  one fact, asked without any of its content words
 *   multihop    two facts; the question names a word of each, or reaches the
 *               second only through a word of the first
 *   temporal    "what did I say about X in <month>": the evidence is the
 *               month's messages on a topic the user talks about every month
 *
 * The text is this project's own, built from templates with a seeded
 * generator, so the file is the same on every run:
 *   node --import tsx bench/make-memory-eval.ts
 * A question's `{month:N}` is the N-th simulated month (0 = the oldest); the
 * benchmark renders it as a month name relative to the day it runs.
 */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { seededRandom } from "./corpus.js";

export interface MemoryEval {
  /** Sessions oldest first; `month` 0..11 of the simulated year, `day` 1..28. */
  sessions: { key: string; month: number; day: number; messages: string[] }[];
  questions: { category: Category; q: string; answers: [session: string, index: number][] }[];
}
export type Category = "single" | "distractor" | "paraphrase" | "multihop" | "temporal";

const rand = seededRandom(0x2545f491);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
/**
 * Draws without replacement from a pool, so an identifying word is used once
 * (with `refill`, once per pass: a name may then name two people, as in life).
 */
function pool<T>(xs: readonly T[], refill = false): () => T {
  let left = shuffle([...xs]);
  return () => {
    if (left.length === 0 && refill) left = shuffle([...xs]);
    const x = left.pop();
    if (x === undefined) throw new Error("pool exhausted");
    return x;
  };
}

const NAMES = pool([
  "Abebe", "Adaeze", "Agnieszka", "Aleksi", "Amara", "Anouk", "Arjun", "Astrid", "Aurelio", "Ayesha", "Bartek", "Beatriz", "Bongani", "Bruna",
  "Caio", "Callum", "Catalina", "Cosmin", "Dagny", "Dalia", "Darius", "Deniz", "Desmond", "Dilnoza", "Dragan", "Eero", "Efua", "Eilidh",
  "Emeka", "Esperanza", "Fatou", "Femke", "Florin", "Gaspard", "Ghislaine", "Gunnar", "Halima", "Hamish", "Hideo", "Ilse", "Imogen", "Ingrid",
  "Ioana", "Isidro", "Jarek", "Jasmijn", "Joaquim", "Jolene", "Kalani", "Kasimir", "Keziah", "Kofi", "Laszlo", "Leilani", "Lorcan", "Ludmila",
  "Magnus", "Malika", "Marisol", "Matthias", "Meruyert", "Mikkel", "Mireille", "Nadezhda", "Nkechi", "Noor", "Oisin", "Olumide", "Orsolya",
  "Oskar", "Paloma", "Pietro", "Priyanka", "Quillon", "Radek", "Rashida", "Renske", "Rohan", "Rosalind", "Saoirse", "Sebastiaan", "Seun",
  "Siddharth", "Sigrun", "Soraya", "Svetlana", "Tadeusz", "Tamsin", "Teodora", "Thandiwe", "Tiago", "Tomasz", "Ulrike", "Vesna", "Viggo",
  "Wanjiru", "Xiomara", "Yannick", "Yevgenia", "Yusuf", "Zainab", "Zbigniew", "Zofia", "Zoltan", "Anneliese", "Benedikt", "Cordelia",
  "Dorotea", "Evander", "Filippa", "Gwendolyn", "Horatio", "Isaura", "Jovan", "Kunle", "Lisandro", "Margit", "Nikolai", "Ottilie",
  "Perpetua", "Radomir", "Stellan", "Tullio", "Ursula", "Valdis", "Wilhelmina", "Ximena", "Yorick", "Zdenka",
], true);
const CITIES = pool([
  "Tromso", "Ljubljana", "Valparaiso", "Tbilisi", "Windhoek", "Hobart", "Bergen", "Arequipa", "Oaxaca", "Kraków", "Gdansk", "Porto",
  "Trieste", "Aarhus", "Tallinn", "Cusco", "Zanzibar", "Halifax", "Dunedin", "Kyoto", "Matera", "Lecce", "Plovdiv", "Sarajevo", "Kotor",
  "Bratislava", "Graz", "Ghent", "Maastricht", "Bordeaux", "Nantes", "Girona", "Granada", "Cordoba", "Salzburg", "Innsbruck", "Lucerne",
  "Uppsala", "Turku", "Tartu", "Riga", "Vilnius", "Kaunas", "Brno", "Olomouc", "Pecs", "Debrecen", "Timisoara", "Cluj", "Varna",
]);
const CODES = () => `${pick(["K", "M", "R", "T", "Z", "Q", "X", "V"])}${pick(["A", "E", "U", "O"])}-${1000 + int(9000)}`;
const RELS = ["cousin", "neighbour", "colleague", "friend", "aunt", "uncle", "sister", "brother", "niece", "nephew"];
const JOBS = ["glassblower", "tax auditor", "marine biologist", "locksmith", "sommelier", "paramedic", "cartographer", "luthier", "beekeeper", "dental hygienist", "stonemason", "court stenographer", "ferry captain", "perfumer", "bookbinder", "falconer"];
const FOODS = ["cardamom buns", "pierogi", "jollof rice", "pho", "shakshuka", "khachapuri", "ceviche", "goulash", "bibimbap", "moussaka", "arepas", "ramen"];

// ---- everyday chatter: the common words every question also uses -----------------------------

const COMMON_TOPICS = ["work", "meeting", "dinner", "weekend", "car", "phone", "birthday", "password", "friend", "job", "trip", "house", "key", "doctor", "money", "name", "week", "email", "report", "party"];
const FILLER: (() => string)[] = [
  () => `Long day at work again, the ${pick(COMMON_TOPICS)} ran late and then another ${pick(COMMON_TOPICS)} about the ${pick(COMMON_TOPICS)}.`,
  () => `Can you help me write an email about the ${pick(COMMON_TOPICS)}? Keep it short and friendly.`,
  () => `I keep forgetting things this week, first the ${pick(COMMON_TOPICS)} and now the ${pick(COMMON_TOPICS)}.`,
  () => `Remind me to sort out the ${pick(COMMON_TOPICS)} before the ${pick(COMMON_TOPICS)}.`,
  () => `What's a good way to plan a ${pick(COMMON_TOPICS)} when the ${pick(COMMON_TOPICS)} keeps changing?`,
  () => `ok thanks`,
  () => `sounds good, let's do that`,
  () => `Honestly the ${pick(COMMON_TOPICS)} thing is stressing me out, and the ${pick(COMMON_TOPICS)} isn't helping.`,
  () => `My ${pick(RELS)} asked about the ${pick(COMMON_TOPICS)} again, same as last ${pick(["week", "month", "time"])}.`,
  () => `Need to call my ${pick(RELS)} about the ${pick(COMMON_TOPICS)} and the ${pick(COMMON_TOPICS)}.`,
  () => `Can you summarise what we said about the ${pick(COMMON_TOPICS)} earlier?`,
  () => `Give me three ideas for ${pick(["dinner", "the weekend", "a birthday present", "a short trip", "the party"])}.`,
  () => `It rained all day so I stayed home and did nothing useful.`,
  () => `The ${pick(COMMON_TOPICS)} at work is finally done, what a relief.`,
  () => `Not sure about the ${pick(COMMON_TOPICS)}, I'll think about it over the weekend.`,
  () => `Work is busy, my friend says I should take a day off and go on a trip.`,
  () => `What should I say in the email to my ${pick(RELS)} about the ${pick(COMMON_TOPICS)}?`,
  () => `Lunch was late today, I ate at my desk while answering email.`,
];

// ---- the facts -------------------------------------------------------------------------------

interface Planted {
  text: string;
  /** Fixed month for temporal facts; otherwise placed anywhere. */
  month?: number;
  id: number;
}
const planted: Planted[] = [];
let nextPlanted = 0;
const plant = (text: string, month?: number): Planted => {
  const p: Planted = { text, id: nextPlanted++, ...(month !== undefined ? { month } : {}) };
  planted.push(p);
  return p;
};
const questions: { category: Category; q: string; answers: Planted[] }[] = [];
const ask = (category: Category, q: string, ...answers: Planted[]) => questions.push({ category, q, answers });

// single: one identifying word (a name, a code, a place) beside common words.
const SINGLE: (() => void)[] = [
  () => {
    const n = NAMES(), rel = pick(RELS), job = pick(JOBS);
    ask("single", `What does my ${rel} ${n} do for work?`, plant(`My ${rel} ${n} just started a new job as a ${job}, which surprised everyone.`));
  },
  () => {
    const n = NAMES(), d = 1 + int(28);
    ask("single", `When is ${n}'s birthday?`, plant(`${n}'s birthday is on the ${d}${d === 1 || d === 21 ? "st" : d === 2 || d === 22 ? "nd" : d === 3 || d === 23 ? "rd" : "th"}, I should get a present early this time.`));
  },
  () => {
    const n = NAMES(), code = CODES();
    ask("single", `What's the wifi password at ${n}'s place?`, plant(`The wifi password at ${n}'s flat is ${code}, writing it here so I don't lose it.`));
  },
  () => {
    const n = NAMES(), c = CITIES();
    ask("single", `Which city did ${n} move to?`, plant(`${n} finally moved to ${c} after years of talking about it.`));
  },
  () => {
    const n = NAMES(), f = pick(FOODS);
    ask("single", `What food is ${n} allergic to?`, plant(`Careful when we cook for ${n}: a bad reaction last time, allergic to anything with ${f} in it.`));
  },
  () => {
    const c = CITIES(), lvl = 2 + int(6);
    ask("single", `Where did I park the car in ${c}?`, plant(`Parked the car on level ${lvl} of the big garage near the ${c} station, row C.`));
  },
  () => {
    const n = NAMES(), num = `0${700 + int(99)} ${100000 + int(899999)}`;
    ask("single", `What is ${n}'s phone number?`, plant(`${n}'s new phone number is ${num}, the old one stopped working.`));
  },
  () => {
    const code = CODES(), n = NAMES();
    ask("single", `What was the booking reference for the trip with ${n}?`, plant(`Booking reference for the trip with ${n} is ${code}, flights and hotel together.`));
  },
];
for (let i = 0; i < 96; i++) SINGLE[i % SINGLE.length]!();

// distractor: the question's common words appear twice in each of several other messages.
const DISTRACT_NOUNS = ["key", "charger", "passport", "ticket", "receipt", "umbrella", "notebook", "wallet", "headphones", "glasses"];
const ADJS = pool(["spare", "backup", "waterproof", "brass", "tartan", "turquoise", "vintage", "folding", "engraved", "laminated", "magnetic", "velvet", "enamel", "wicker", "corduroy", "titanium", "bamboo", "canvas", "ceramic", "silk"]);
const CONTAINERS = pool(["biscuit tin", "sock drawer", "glovebox", "hallway cabinet", "toolbox", "piano bench", "bread bin", "shoebox", "filing cabinet", "laundry basket", "sewing kit", "tackle box", "fruit bowl", "garden shed", "linen cupboard", "suitcase pocket", "bookshelf", "desk organiser", "coat pocket", "medicine cabinet"]);
for (let i = 0; i < 20; i++) {
  const noun = DISTRACT_NOUNS[i % DISTRACT_NOUNS.length]!, adj = ADJS(), box = CONTAINERS();
  const e = plant(`The ${adj} ${noun} is in the ${box} now.`);
  for (let k = 0; k < 5; k++) {
    plant(pick([
      `Where did I put the ${noun}? I put the ${noun} down somewhere and now it's gone.`,
      `I lost the ${noun} again. Found it, then put the ${noun} somewhere else. Where do I put a ${noun} so I find it?`,
      `Did I put the ${noun} in the car? I always put the ${noun} in a different place.`,
    ]));
  }
  ask("distractor", `Where did I put the ${adj} ${noun}?`, e);
}
const EVENTS = ["dentist", "meeting", "dinner", "party", "interview", "flight"];
for (let i = 0; i < 30; i++) {
  const ev = EVENTS[i % EVENTS.length]!, n = NAMES();
  const e = plant(`${n} moved our ${ev} to ${pick(["Tuesday", "Wednesday", "Thursday", "Friday"])} at ${1 + int(11)}:${pick(["00", "15", "30", "45"])}.`);
  for (let k = 0; k < 4; k++) plant(`When is the ${ev}? I think the ${ev} moved, or was it the other ${ev}? What time is the ${ev} now?`);
  ask("distractor", `What time did ${n} move the ${ev} to?`, e);
}

// paraphrase: the question shares no content word with its answer.
const PARAPHRASES: [fact: string, question: string][] = [
  ["We adopted a beagle from the shelter and he's called Pretzel.", "What is my dog's name?"],
  ["Our tabby is named Miso, she sleeps on the radiator all day.", "What's the cat called?"],
  ["I got the offer from the shipyard, starting as a welding inspector in a month!", "What position did I accept?"],
  ["The landlord is raising the rent by ninety euros from the first.", "How much more will my apartment cost?"],
  ["Doctor says my iron is low, so I'm on supplements for twelve weeks.", "What did the physician prescribe me?"],
  ["Bought a secondhand hatchback, a little green Fiat, for 4,300.", "What vehicle did I purchase?"],
  ["Signed up for Portuguese lessons twice a week at the community centre.", "Which language am I studying?"],
  ["My sister is expecting twins in spring!", "Is my sibling having kids?"],
  ["I finished the marathon in four hours and twelve minutes.", "What was my race time?"],
  ["I can't eat shellfish, my throat swells up.", "Which food am I allergic to?"],
  ["My partner Jo proposed on the pier and I said yes!", "Am I engaged?"],
  ["Started learning the cello, my teacher is very patient.", "What instrument do I play?"],
  ["My grandmother turns ninety on the twelfth.", "How old will my gran be?"],
  ["We're relocating to Edinburgh at the end of summer.", "Where are we moving?"],
  ["My boss approved a raise to 62k starting next quarter.", "What will my salary be?"],
  ["The flat upstairs has a leak and water is coming through our ceiling.", "What's wrong with the apartment?"],
  ["Booked a week in Crete for our anniversary.", "Where is our holiday?"],
  ["The pediatric nurse said Leo's fever should pass in two days.", "What did they say about my son being sick?"],
  ["Finally read the whole of Middlemarch, took me all winter.", "Which novel did I finish?"],
  ["I'm training for a hundred-kilometre bike ride in the Alps.", "What cycling event am I preparing for?"],
  ["The tomatoes on the balcony are finally turning red.", "How are my plants growing?"],
  ["I've switched to green tea, no more espresso after noon.", "What drink did I give up?"],
  ["My daughter got into the architecture programme at Delft.", "Which university will my kid attend?"],
  ["Our team lead quit on Friday without notice.", "Did my manager leave?"],
  ["We watched the new Villeneuve film, gorgeous but too long.", "What movie did I see?"],
  ["My pin for the building door is 5813.", "What's the passcode for the entrance?"],
  ["The band I love, Khruangbin, play the Roundhouse on the 9th.", "When is the concert?"],
  ["I sprained my ankle on the stairs, it's swollen and purple.", "How did I get injured?"],
  ["I spent 240 on groceries this fortnight, way over.", "How much did food shopping cost?"],
  ["My best mate Dev is getting married in Goa.", "Where is my friend's wedding?"],
  ["Mum's hip surgery went fine, she's home resting.", "How is my mother doing?"],
  ["My gym membership renews automatically on the 3rd.", "When is my fitness subscription due?"],
  ["The pho place on Kings Road is the best we've tried.", "Which restaurant is my favourite?"],
  ["I've been jogging every morning before breakfast.", "What's my exercise routine?"],
  ["Dad's retiring from the railway after forty years.", "Is my father stopping work?"],
  ["We hired a nanny called Rosa for the mornings.", "Who looks after the children?"],
  ["Lost my wallet on the tram, cancelled both cards.", "What did I misplace?"],
  ["My nephew Sami is learning to ride without stabilisers.", "What is the boy practising?"],
  ["Our kitchen renovation quote came in at 18,000.", "How expensive is redoing the house?"],
  ["I'm thinking of quitting to go freelance as a translator.", "Am I considering leaving my job?"],
];
for (const [fact, q] of PARAPHRASES) ask("paraphrase", q, plant(fact));

// multihop: two facts; the question reaches one directly and the other through it.
for (let i = 0; i < 20; i++) {
  const n = NAMES(), c = CITIES(), rel = pick(RELS);
  const fest = pick(["jazz festival", "lantern parade", "film festival", "food market", "boat race", "book fair"]);
  const a = plant(`My ${rel} ${n} lives in ${c} these days, loves it there.`);
  const b = plant(`Apparently ${c} hosts a famous ${fest} every summer.`);
  ask("multihop", `What happens every summer in the city where my ${rel} ${n} lives?`, a, b);
}
// One person per role, so each question has one answer.
const ROLES = pool(["manager", "landlord", "accountant", "dentist", "mentor", "physio", "driving instructor", "piano teacher", "lawyer", "vet", "tutor", "plumber", "estate agent", "personal trainer", "bank adviser", "tax adviser", "editor", "football coach", "architect", "notary"]);
for (let i = 0; i < 20; i++) {
  const n = NAMES(), proj = pick(["budget", "migration", "hiring", "audit", "launch", "pricing", "security"]), code = CODES();
  const role = ROLES();
  const a = plant(`My new ${role} is ${n}, seems nice so far.`);
  const b = plant(`${n} wants the ${proj} paperwork by Friday, reference ${code}.`);
  ask("multihop", `What paperwork does my ${role} want and what is its reference?`, a, b);
}

// temporal: topics the user returns to every month; the question names the month.
const TOPICS: [topic: string, lines: ((d: string) => string)[]][] = [
  ["garden", [(d) => `The garden is coming along, ${d}.`, (d) => `Spent the morning in the garden: ${d}.`]],
  ["piano", [(d) => `Piano practice update: ${d}.`, (d) => `My piano teacher said ${d}.`]],
  ["budget", [(d) => `Budget check this month: ${d}.`, (d) => `Went over the budget again, ${d}.`]],
  ["running", [(d) => `Running log: ${d}.`, (d) => `Went running after work, ${d}.`]],
  ["bread", [(d) => `Baked bread again, ${d}.`, (d) => `The sourdough bread ${d}.`]],
  ["book club", [(d) => `At book club we ${d}.`, (d) => `Book club tonight: ${d}.`]],
  ["bathroom renovation", [(d) => `Bathroom renovation: ${d}.`, (d) => `The renovation of the bathroom ${d}.`]],
  ["therapy", [(d) => `Therapy session today, ${d}.`, (d) => `In therapy we talked and ${d}.`]],
];
const DETAILS = [
  "the tomatoes finally sprouted", "I planted garlic along the fence", "slugs ate half the lettuce", "we learned a new scale", "I played the nocturne without stopping",
  "we spent too much on takeaway", "I cut the streaming subscriptions", "did eight kilometres without walking", "my knee hurt on the hills", "the crust came out too dark",
  "the starter smelled like vinegar", "we argued about the ending", "nobody finished the book", "the tiles arrived cracked", "the plumber never showed up",
  "I felt lighter afterwards", "we talked about my father", "I set a new personal best", "the loaf rose beautifully", "I saved four hundred this month",
  "the chapter on memory was fascinating", "the grout is finally done", "I practised the sonata for an hour", "I moved the roses to the shade", "I tried a rye flour mix",
  "the new pace felt easy", "we chose the next novel", "the bill for electricity doubled", "I kept a journal all week", "the shower screen was fitted",
];
const temporalByTopic = new Map<string, Planted[][]>();
for (const [topic, lines] of TOPICS) {
  const byMonth: Planted[][] = [];
  for (let m = 0; m < 12; m++) byMonth.push([plant(lines[0]!(pick(DETAILS)), m), plant(lines[1]!(pick(DETAILS)), m)]);
  temporalByTopic.set(topic, byMonth);
}
for (let i = 0; i < 40; i++) {
  const [topic] = TOPICS[i % TOPICS.length]!;
  // Month 0 is not asked about: its name is also the current month's, which "in <month>" means.
  const m = 1 + ((i * 5 + Math.floor(i / TOPICS.length)) % 11);
  const form = pick([`What did I say about the ${topic} in {month:${m}}?`, `How was the ${topic} going in {month:${m}}?`, `What happened with the ${topic} back in {month:${m}}?`]);
  ask("temporal", form, ...temporalByTopic.get(topic)![m]!);
}

// ---- lay out the year ------------------------------------------------------------------------

const SESSIONS = 24;
const TARGET = 2_200;
const sessions: { key: string; month: number; day: number; items: (Planted | string)[] }[] = Array.from({ length: SESSIONS }, (_, i) => ({
  key: `s${String(i + 1).padStart(2, "0")}`,
  month: Math.floor(i / 2),
  day: i % 2 === 0 ? 3 + int(10) : 15 + int(12),
  items: [],
}));
for (const p of planted) {
  const month = p.month ?? int(12);
  sessions[month * 2 + int(2)]!.items.push(p);
}
let filler = TARGET - planted.length;
while (filler-- > 0) sessions[int(SESSIONS)]!.items.push(pick(FILLER)());
const where = new Map<number, [string, number]>();
const out: MemoryEval = {
  sessions: sessions.map((s) => {
    shuffle(s.items);
    s.items.forEach((it, i) => typeof it !== "string" && where.set(it.id, [s.key, i]));
    return { key: s.key, month: s.month, day: s.day, messages: s.items.map((it) => (typeof it === "string" ? it : it.text)) };
  }),
  questions: questions.map((q) => ({ category: q.category, q: q.q, answers: q.answers.map((a) => where.get(a.id)!) })),
};

const file = fileURLToPath(new URL("./data/memory-eval.json", import.meta.url));
await writeFile(file, `${JSON.stringify(out)}\n`);
const byCategory = new Map<string, number>();
for (const q of out.questions) byCategory.set(q.category, (byCategory.get(q.category) ?? 0) + 1);
const counts = [...byCategory].map(([k, n]) => `${k} ${n}`);
console.log(`${file}: ${out.sessions.reduce((n, s) => n + s.messages.length, 0)} messages in ${SESSIONS} sessions, ${out.questions.length} questions (${counts.join(", ")})`);
