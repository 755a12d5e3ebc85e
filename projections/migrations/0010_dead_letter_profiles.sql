-- A dead letter keeps the original bytes, personal data included: it names the profiles it is
-- about (the record's key, and the subject of an event refused for its key), so deleting a
-- profile deletes its dead letters too (R26) and an export shows them (R27). Rows buried
-- before this migration name none.
ALTER TABLE dead_letters ADD COLUMN profiles uuid[] NOT NULL DEFAULT '{}';
CREATE INDEX dead_letters_profiles ON dead_letters USING gin (profiles);
