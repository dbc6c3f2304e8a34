//! Typed ids: a tenant's, a warehouse's, a principal's and a role's id are different things, so a
//! call that takes two of them cannot have them swapped. Each is a UUID on the wire and on disk (serialized as the bare
//! UUID), and converts from and to [`Uuid`] only where an id enters or leaves (a path, a record
//! of another kind).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new_v4() -> Self {
                Self(Uuid::new_v4())
            }

            /// A fresh time-ordered id.
            pub fn now_v7() -> Self {
                Self(Uuid::now_v7())
            }

            /// The nil id (Floe itself, where an actor is needed).
            pub const fn nil() -> Self {
                Self(Uuid::nil())
            }

            /// The UUID it is.
            pub const fn uuid(self) -> Uuid {
                self.0
            }

            /// The UUID without hyphens (directory names).
            pub fn simple(self) -> uuid::fmt::Simple {
                self.0.simple()
            }

            /// Its 16 bytes, for keys.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// The id of these 16 bytes (a key read back).
            pub fn from_slice(bytes: &[u8]) -> Result<Self, uuid::Error> {
                Uuid::from_slice(bytes).map(Self)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                self.0.as_bytes()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// A tenant's id.
    TenantId
);
typed_id!(
    /// A warehouse's id (the Iceberg `prefix`).
    WarehouseId
);
typed_id!(
    /// A table's or view's id (they share one name space, and one id space: a table's
    /// metadata `table-uuid`, a view's `view-uuid`).
    TabularId
);
typed_id!(
    /// A principal's id.
    PrincipalId
);
typed_id!(
    /// A role's id.
    RoleId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_bare_uuid_on_the_wire() {
        let id = Uuid::new_v4();
        let typed = PrincipalId::from(id);
        assert_eq!(
            serde_json::to_string(&typed).unwrap(),
            serde_json::to_string(&id).unwrap()
        );
        let back: RoleId = serde_json::from_str(&serde_json::to_string(&id).unwrap()).unwrap();
        assert_eq!(back.uuid(), id);
    }
}
