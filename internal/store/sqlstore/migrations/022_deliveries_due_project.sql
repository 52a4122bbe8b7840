-- Due deliveries by project: a claim that leaves out projects at their share
-- of the engine reads each other project's earliest due deliveries here,
-- instead of walking deliveries_due past every due row of the projects left
-- out (a project whose endpoints hang has a large due backlog, and on SQLite
-- the walk held the one writer that every publish needs).
CREATE INDEX deliveries_due_project ON deliveries (project_id, next_attempt_at) WHERE state IN ('pending', 'retrying') AND NOT held;
