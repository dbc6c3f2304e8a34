-- Locations are claimed by tables, views and namespaces with a `location` property (see
-- src/store/locations.rs): a claim looks up equal and enclosing locations and the range of
-- locations inside it, in byte order, so both are indexed in that order.
CREATE INDEX tabulars_location ON tabulars ((location COLLATE "C"));
CREATE INDEX namespaces_location ON namespaces (((properties ->> 'location') COLLATE "C"))
    WHERE properties ? 'location';
