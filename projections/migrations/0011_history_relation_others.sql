-- A relation's line in a timeline names the profile on its other side. Deleting that profile
-- deletes those lines too, in every timeline (R26): this partial index finds them without a
-- scan of the whole history (it holds relation lines only).
CREATE INDEX history_relation_others ON history (((summary ->> 'other_profile_id')::uuid))
    WHERE kind = 'relation';
