-- Request budgets shared by the whole cluster: how many of a named budget's
-- requests (the fallback poller's upstream requests) were spent in the
-- window that started at window_start (unix ms). A node spends from the row
-- in one statement, so the limit holds however many nodes spend.
CREATE TABLE budgets (
    name         TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    used         INTEGER NOT NULL,
    PRIMARY KEY (name, window_start)
);
