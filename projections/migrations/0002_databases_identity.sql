-- Databases and their custom-field structure (R1-R3). Custom values live in profiles.custom
-- (jsonb), so adding or removing a field touches only these rows, never the profiles table.
CREATE TABLE databases (
    database_id text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE database_fields (
    database_id text    NOT NULL REFERENCES databases ON DELETE CASCADE,
    name        text    NOT NULL,
    field_type  text    NOT NULL,
    options     text[]  NOT NULL DEFAULT '{}',
    is_unique   boolean NOT NULL DEFAULT false,
    position    integer NOT NULL,
    removed     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (database_id, name)
);

-- Deleted profiles (R26): their events are ignored from here on, their ids never come back (R4).
CREATE TABLE profile_tombstones (
    profile_id uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL
);

-- Reads by phone (R6): a phone belongs to at most one profile of a database.
CREATE INDEX profiles_phones ON profiles USING gin (phones);

-- Location fields filled from an IP rather than set by a person (R21: a manual value wins).
ALTER TABLE profiles ADD COLUMN located text[] NOT NULL DEFAULT '{}';
