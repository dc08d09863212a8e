/** Numbers in [0, 1) fixed by a seed (mulberry32), so generated benchmark data is the same every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A corpus of varied chat messages, from "ok" to a few sentences, fixed by a seed. */
export function makeCorpus(n: number, seed: number): string[] {
  const rand = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const names = ["Ana", "Bilal", "Chen", "Dmitri", "Elif", "Farah", "Giulia", "Hiro", "Ines", "Jonas", "Kwame", "Lena"];
  const places = ["Lisbon", "the office", "Osaka", "the station", "Berlin", "the gym", "Nairobi", "the ramen place", "Montreal"];
  const things = ["the quarterly report", "my passport", "the release notes", "the tomato seedlings", "invoice #4471", "the API keys", "the slide deck", "grandma's recipe", "the Postgres migration", "the flight booking"];
  const days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the weekend", "tomorrow", "next week", "tonight"];
  const short = ["ok", "thanks!", "sounds good", "lol", "no worries", "yes please", "hmm, not sure", "👍", "brb", "done", "can you repeat that?", "great, thank you so much"];
  const templates: (() => string)[] = [
    () => pick(short),
    () => `Remind me to check ${pick(things)} on ${pick(days)}.`,
    () => `What did ${pick(names)} say about ${pick(things)}?`,
    () => `I'm meeting ${pick(names)} at ${pick(places)} ${pick(days)} around ${1 + Math.floor(rand() * 12)}:${pick(["00", "15", "30", "45"])}.`,
    () => `Can you summarise what we discussed about ${pick(things)} so far? I need it for ${pick(names)} before ${pick(days)}.`,
    () => `My flight to ${pick(places)} got moved to ${pick(days)}, so ${pick(things)} will have to wait.`,
    () => `Where did I put ${pick(things)}? Last time I saw it was at ${pick(places)}.`,
    () =>
      `Quick update: ${pick(names)} finished ${pick(things)}, ${pick(names)} is still on ${pick(things)}, ` +
      `and nobody has looked at ${pick(things)} yet. Can we talk about priorities ${pick(days)}? ` +
      `I think ${pick(things)} matters more than ${pick(things)} right now, but I'd like a second opinion.`,
    () => `Translate "${pick(short)}" into ${pick(["German", "Japanese", "Portuguese", "Turkish", "Swahili"])}.`,
    () => `How many days between ${pick(days)} and ${pick(days)} if I leave from ${pick(places)}?`,
    () =>
      `Here's the plan for ${pick(days)}: first ${pick(things)}, then lunch with ${pick(names)} at ${pick(places)}, ` +
      `then I need two quiet hours for ${pick(things)}. If anything slips, ${pick(things)} can move to ${pick(days)}.`,
  ];
  return Array.from({ length: n }, (_, i) => `${pick(templates)()}${i % 7 === 0 ? ` (${i})` : ""}`);
}
