-- Floe's catalog on PostgreSQL.
--
-- Names compare byte-wise (COLLATE "C"), so lists page in the same stable order as on sled.
-- Whole records are kept as JSONB beside the columns that are looked up, constrained or compared;
-- namespaces and tables are plain columns, because commits compare-and-swap metadata_location.
-- Foreign keys make "drop only when empty" race-free: a namespace, warehouse or tenant that still
-- has children cannot be deleted, whatever another replica is doing at the same moment.

CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    name text COLLATE "C" NOT NULL UNIQUE,
    record jsonb NOT NULL
);

CREATE TABLE warehouses (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    name text COLLATE "C" NOT NULL,
    credential text COLLATE "C",
    record jsonb NOT NULL,
    UNIQUE (tenant_id, name)
);

-- Principals and roles name their tenant without a foreign key: the root principal's tenant is
-- created in the same bootstrap, and deleting a tenant removes them explicitly.
CREATE TABLE principals (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text COLLATE "C" NOT NULL,
    client_id text COLLATE "C" NOT NULL UNIQUE,
    record jsonb NOT NULL
);
CREATE INDEX principals_by_tenant ON principals (tenant_id, name);

CREATE TABLE roles (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text COLLATE "C" NOT NULL,
    record jsonb NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE role_assignments (
    principal_id uuid NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    role_id uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (principal_id, role_id)
);
CREATE INDEX role_assignments_by_role ON role_assignments (role_id);

CREATE TABLE grants (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    role_id uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    resource jsonb NOT NULL,
    privilege text NOT NULL,
    record jsonb NOT NULL,
    UNIQUE (role_id, resource, privilege)
);
CREATE INDEX grants_by_tenant ON grants (tenant_id, id);

CREATE TABLE storage_credentials (
    tenant_id uuid NOT NULL,
    name text COLLATE "C" NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE namespaces (
    id uuid PRIMARY KEY,
    warehouse_id uuid NOT NULL REFERENCES warehouses (id),
    parent_id uuid REFERENCES namespaces (id),
    levels text[] NOT NULL,
    -- The last level, which lists order and page by.
    name text COLLATE "C" NOT NULL,
    properties jsonb NOT NULL,
    created_at_ms bigint NOT NULL,
    UNIQUE (warehouse_id, levels)
);
CREATE INDEX namespaces_children ON namespaces (warehouse_id, parent_id, name);

-- Tables and views share one name space inside a namespace.
CREATE TABLE tabulars (
    namespace_id uuid NOT NULL REFERENCES namespaces (id),
    name text COLLATE "C" NOT NULL,
    id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('table', 'view')),
    location text NOT NULL,
    metadata_location text NOT NULL,
    created_at_ms bigint NOT NULL,
    PRIMARY KEY (namespace_id, name)
);

CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    created_at_ms bigint NOT NULL,
    record jsonb NOT NULL
);

CREATE TABLE audit_events (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    at_ms bigint NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX audit_events_by_tenant ON audit_events (tenant_id, id);
CREATE INDEX audit_events_by_time ON audit_events (at_ms);

CREATE TABLE idempotency (
    key text PRIMARY KEY,
    expires_at_ms bigint NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX idempotency_by_expiry ON idempotency (expires_at_ms);
