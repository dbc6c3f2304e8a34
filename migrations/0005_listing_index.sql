-- Listing a namespace's tables (or views) page by page reads only this index: an index-only scan
-- over (namespace, kind, name) from the page's start. Through the primary key every name needed its
-- row's page for the kind, and a namespace's rows lie spread over the heap (one read per name for
-- a page not in memory: 5-11 ms a page at a million tables, against 0.1 ms from this index).
-- About 57 bytes per table; building it holds writes to tabulars for about 1.3 s per million rows.
CREATE INDEX tabulars_listing ON tabulars (namespace_id, kind, name);
