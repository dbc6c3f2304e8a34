-- Staged creates reserve their table's location until the stage is committed (the row is then
-- deleted in the commit's transaction and the table's own row claims it) or expires_at_ms passes.
-- check_claim reads these rows beside tabulars, dropped_tabulars and namespaces; lapsed rows hold
-- nothing and are deleted by the purge queue's sweep.
CREATE TABLE staged_locations (
    warehouse_id uuid NOT NULL REFERENCES warehouses (id) ON DELETE CASCADE,
    owner uuid NOT NULL,
    levels text[] NOT NULL,
    location text COLLATE "C" NOT NULL,
    expires_at_ms bigint NOT NULL,
    PRIMARY KEY (warehouse_id, owner)
);
CREATE INDEX staged_locations_location ON staged_locations (warehouse_id, location);
CREATE INDEX staged_locations_expiry ON staged_locations (expires_at_ms);
