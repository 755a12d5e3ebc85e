-- Each enrolment in a scenario is a run of its own (R24: a profile's participation "with
-- results"): enrolled again, a profile keeps its earlier runs and their results, where the
-- new enrolment overwrote them. Existing rows become run 1.
ALTER TABLE scenario_runs ADD COLUMN run integer NOT NULL DEFAULT 1;
ALTER TABLE scenario_runs DROP CONSTRAINT scenario_runs_pkey;
ALTER TABLE scenario_runs ADD PRIMARY KEY (profile_id, scenario_id, run);
