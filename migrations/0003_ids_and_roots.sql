-- Grants name tables and views by id: find one by id.
CREATE INDEX tabulars_by_id ON tabulars (id);

-- Each warehouse's storage root (e.g. s3://bucket/prefix), filled in at start for warehouses
-- created before this column existed. No two roots may overlap; checked under an advisory lock.
ALTER TABLE warehouses ADD COLUMN root text COLLATE "C";
CREATE INDEX warehouses_root ON warehouses (root);
