-- Leave a quarter of each page free so that the common updates of a subscription (an R13
-- priority shift moves up to 19 others per add; status and category changes) stay on the
-- row's page and skip both indexes (a HOT update). Pages written before keep their old fill.
ALTER TABLE subscriptions SET (fillfactor = 75);
