-- A second bit per dimension for the PostgreSQL vector store's prefilter
-- (src/memory/vector-codes.ts): set where the unit vector's component is
-- large, |x_i| >= 0.6 / sqrt(d). With the sign bit of sql/010 it tells a
-- zero from a positive component (sparse vectors, such as the hash
-- embedder's, are mostly zeros) and a small component from a large one, so
-- the candidates the prefilter proposes are ranked by a closer estimate of
-- the dot product.

-- Float32 components are read from their bytes (little-endian), as the
-- store writes them: exponent and mantissa give |x| exactly in double
-- precision, which is also how the store computes the bit. A value shorter
-- than one component (never written by the store) gets no bits, not an error.
CREATE FUNCTION message_vector_magnitude(embedding bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(decode(string_agg(lpad(to_hex(s.byte), 2, '0'), '' ORDER BY s.j), 'hex'), '\x'::bytea)
    FROM (SELECT i / 8 AS j,
                 sum(CASE WHEN (2.0::float8 ^ ((((get_byte(embedding, 4 * i + 3) & 127) << 1) | (get_byte(embedding, 4 * i + 2) >> 7)) - 127))
                               * (1 + (((get_byte(embedding, 4 * i + 2) & 127) << 16) | (get_byte(embedding, 4 * i + 1) << 8) | get_byte(embedding, 4 * i)) / 8388608.0::float8)
                               >= 0.6::float8 / sqrt(greatest(length(embedding) / 4, 1)::float8)
                          THEN 1 << (i % 8) ELSE 0 END)::int AS byte
            FROM generate_series(0, length(embedding) / 4 - 1) AS i
           GROUP BY i / 8) AS s
$$;

ALTER TABLE message_vectors ADD COLUMN magnitude bytea;
UPDATE message_vectors SET magnitude = message_vector_magnitude(embedding);
ALTER TABLE message_vectors ALTER COLUMN magnitude SET NOT NULL;

-- Any writer that does not send the bits (an older release during a rolling
-- upgrade, a manual fix) gets them computed: sql/010's write trigger, which
-- does the same for the code, does it for the size bits too (one trigger
-- call per row, as before).
CREATE OR REPLACE FUNCTION message_vectors_before_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.code IS NULL
     OR (TG_OP = 'UPDATE' AND NEW.embedding IS DISTINCT FROM OLD.embedding AND NEW.code IS NOT DISTINCT FROM OLD.code) THEN
    NEW.code := message_vector_code(NEW.embedding);
  END IF;
  IF NEW.magnitude IS NULL
     OR (TG_OP = 'UPDATE' AND NEW.embedding IS DISTINCT FROM OLD.embedding AND NEW.magnitude IS NOT DISTINCT FROM OLD.magnitude) THEN
    NEW.magnitude := message_vector_magnitude(NEW.embedding);
  END IF;
  NEW.written_xid := pg_current_xact_id();
  IF TG_OP = 'UPDATE' AND (NEW.user_id <> OLD.user_id OR NEW.collection <> OLD.collection) THEN
    INSERT INTO message_vector_deletions (collection, user_id, point_id) VALUES (OLD.collection, OLD.user_id, OLD.point_id);
  END IF;
  RETURN NEW;
END
$$;
