-- Leave room on each page of profiles so that an update that keeps the indexed columns (id,
-- md5/xxh ids, email, phones), the common one (fields set or unset, custom fields, status,
-- activity), stays on the row's page and skips all five indexes, the GIN index on phones among
-- them (a HOT update). Pages written before keep their old fill until rewritten.
ALTER TABLE profiles SET (fillfactor = 70);
