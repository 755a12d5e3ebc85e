-- The identity of this read-model store (the schema, in its database). Its projector's Kafka
-- consumer group is named after `store_id`, so projectors of other stores reading the same
-- topic (another schema or database, another deployment) never share a group: in one group
-- Kafka would split the partitions between them and each store would miss the others' events.
-- The names it was made under tell a copy (a database made from this one as a template, a
-- renamed schema) from the original: a copy takes a new id (`projections.store.store_id`).
CREATE TABLE store_identity (
    only_row      boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    store_id      uuid NOT NULL DEFAULT gen_random_uuid(),
    database_name text NOT NULL DEFAULT current_database(),
    schema_name   text NOT NULL DEFAULT current_schema()
);
INSERT INTO store_identity DEFAULT VALUES;
