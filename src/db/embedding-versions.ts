import type pg from "pg";

/**
 * Registers the embedding model in use and returns its collection: one per
 * (model, dimensions), so vectors of different models never share one.
 */
export async function collectionFor(pool: pg.Pool, prefix: string, model: string, dimensions: number): Promise<string> {
  const slug = model.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "").slice(0, 60);
  const collection = `${prefix}_${slug}_${dimensions}`;
  const { rows } = await pool.query<{ collection: string }>(
    `INSERT INTO embedding_versions (model, dimensions, collection) VALUES ($1, $2, $3)
     ON CONFLICT (model, dimensions) DO UPDATE SET active = true
     RETURNING collection`,
    [model, dimensions, collection],
  );
  return rows[0]!.collection;
}

/** Every collection any embedding version ever used, active or not, with its dimensions. */
export async function allCollections(pool: pg.Pool): Promise<{ collection: string; dimensions: number }[]> {
  const { rows } = await pool.query<{ collection: string; dimensions: number }>("SELECT collection, dimensions FROM embedding_versions ORDER BY id");
  return rows;
}
