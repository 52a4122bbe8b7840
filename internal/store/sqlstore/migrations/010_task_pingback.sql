-- The pingback URL a 2captcha client named in in.php: when the task is
-- decided, Carrier sends its result there (id and code, as 2captcha does)
-- through a delivery of the pingback subscription for that URL's host.
ALTER TABLE tasks ADD COLUMN pingback_url TEXT NOT NULL DEFAULT '';
