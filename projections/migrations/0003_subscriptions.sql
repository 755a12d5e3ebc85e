-- Resources and their configuration (R10, R13, R16, R17, R9).
CREATE TABLE resources (
    resource_id    text PRIMARY KEY,
    database_id    text NOT NULL,
    name           text NOT NULL,
    channels       text[] NOT NULL,
    categories     text[] NOT NULL DEFAULT '{}',
    custom_fields  jsonb NOT NULL DEFAULT '[]',
    raise_priority boolean NOT NULL,
    opt_in         text NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- The subscription list read model: one row per subscription still in a profile's list
-- (soft-deleted ones included, R14); evicted ones leave it.
CREATE TABLE subscriptions (
    sub_id      uuid PRIMARY KEY,
    profile_id  uuid NOT NULL,
    resource_id text NOT NULL,
    channel     text NOT NULL,
    contact     text NOT NULL,
    status      text NOT NULL,
    priority    integer NOT NULL,
    categories  jsonb NOT NULL DEFAULT '{}',
    fields      jsonb NOT NULL DEFAULT '{}',
    custom      jsonb NOT NULL DEFAULT '{}',
    deleted     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX subscriptions_profile ON subscriptions (profile_id, resource_id, channel);

-- The consent ledger: every status and category change of every subscription, with how.
CREATE TABLE subscription_ledger (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    profile_id uuid NOT NULL,
    sub_id     uuid NOT NULL,
    at         timestamptz NOT NULL,
    change     text NOT NULL,
    status     text,
    categories jsonb,
    how        text,
    ip         text,
    detail     text
);
CREATE INDEX subscription_ledger_profile ON subscription_ledger (profile_id, sub_id, id);
