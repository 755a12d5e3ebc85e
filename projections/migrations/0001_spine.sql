-- Read models, checkpoints and dead letters live in one schema so that a batch, its
-- checkpoint and its dead letters commit in one transaction, and a rebuild can target a new schema.

CREATE TABLE checkpoints (
    projection  text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);

-- Upstream double-publishes of one event id are applied once.
CREATE TABLE applied_events (
    projection text NOT NULL,
    event_id   uuid NOT NULL,
    PRIMARY KEY (projection, event_id)
);

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection  text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint  NOT NULL,
    reason      text    NOT NULL,
    payload     bytea   NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (projection, topic, partition, "offset")
);

CREATE TABLE profiles (
    profile_id  uuid PRIMARY KEY,
    database_id text NOT NULL,
    md5_id      text NOT NULL UNIQUE,
    xxh_id      text NOT NULL UNIQUE,
    email       text,
    phones      text[] NOT NULL DEFAULT '{}',
    fields      jsonb NOT NULL DEFAULT '{}',
    custom      jsonb NOT NULL DEFAULT '{}',
    status      text NOT NULL,
    import_mode text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint NOT NULL
);
CREATE INDEX profiles_email ON profiles (database_id, email) WHERE email IS NOT NULL;
