-- Interactions and data of a profile (R23-R25): static segments, scenarios, promo codes,
-- orders and relations. Triggers and forms are read from the history timeline.
CREATE TABLE segment_members (
    segment_id  text NOT NULL,
    profile_id  uuid NOT NULL,
    database_id text NOT NULL,
    since       timestamptz NOT NULL,
    manual      boolean NOT NULL,
    PRIMARY KEY (segment_id, profile_id)
);
CREATE INDEX segment_members_profile ON segment_members (profile_id);

CREATE TABLE scenario_runs (
    profile_id  uuid NOT NULL,
    scenario_id text NOT NULL,
    entered_at  timestamptz,
    finished_at timestamptz,
    result      text,
    manual      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (profile_id, scenario_id)
);

CREATE TABLE promo_codes (
    profile_id uuid NOT NULL,
    code       text NOT NULL,
    promo_id   text,
    state      text NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (profile_id, code)
);

CREATE TABLE orders (
    profile_id uuid NOT NULL,
    order_id   text NOT NULL,
    status     text NOT NULL,
    currency   text NOT NULL,
    total      double precision NOT NULL,
    items      jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (profile_id, order_id)
);

-- Both sides see a relation (R25): one row per direction.
CREATE TABLE relations (
    profile_id       uuid NOT NULL,
    other_profile_id uuid NOT NULL,
    relation_type    text NOT NULL,
    direction        text NOT NULL,
    since            timestamptz NOT NULL,
    PRIMARY KEY (profile_id, other_profile_id, relation_type, direction)
);
CREATE INDEX relations_other ON relations (other_profile_id);

-- A documented, stable view for analytics (R31 reading of R23's SQL export).
CREATE VIEW analytics_segment_members AS
    SELECT segment_id, profile_id, database_id, since, manual FROM segment_members;
