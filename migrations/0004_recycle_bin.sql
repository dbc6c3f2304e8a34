-- Each warehouse's recycle bin: dropped tables and views, restorable until expires_at_ms, then
-- forgotten (their files purged first when purge_files). A dropped object keeps its location
-- claim: check_claim reads these rows beside tabulars and namespaces.
CREATE TABLE dropped_tabulars (
    warehouse_id uuid NOT NULL REFERENCES warehouses (id),
    id uuid NOT NULL,
    tabular jsonb NOT NULL,
    levels text[] NOT NULL,
    location text COLLATE "C" NOT NULL,
    dropped_at_ms bigint NOT NULL,
    expires_at_ms bigint NOT NULL,
    purge_files boolean NOT NULL,
    lease_until_ms bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (warehouse_id, id)
);
CREATE INDEX dropped_tabulars_location ON dropped_tabulars (warehouse_id, location);
CREATE INDEX dropped_tabulars_due ON dropped_tabulars (expires_at_ms);
