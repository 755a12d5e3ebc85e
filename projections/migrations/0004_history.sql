-- The history timeline (R18, R19): one row per event of a profile, newest first by (at, seq).
-- seq breaks ties and makes keyset paging stable while new rows arrive.
CREATE TABLE history (
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    profile_id uuid NOT NULL,
    event_id   uuid NOT NULL,
    at         timestamptz NOT NULL,
    kind       text NOT NULL,
    type       text NOT NULL,
    summary    jsonb NOT NULL,
    PRIMARY KEY (profile_id, at, seq)
);
