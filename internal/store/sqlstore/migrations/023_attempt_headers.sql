-- The headers of the answer each attempt got, as "Name: value" lines (at
-- most 2 KiB, credentials redacted), for the console's attempt timeline.
ALTER TABLE attempts ADD COLUMN response_headers TEXT NOT NULL DEFAULT '';
