-- The time of the action (open, click, pixel hit) whose IP gave the profile's latest-action
-- location (R21): an action that arrives later but happened earlier leaves it as it is.
ALTER TABLE profiles ADD COLUMN acted_at timestamptz;
