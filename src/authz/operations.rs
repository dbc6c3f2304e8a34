//! Operations whose privileges are more than one target's one privilege, decided here once:
//! a commit (completing a staged create, or writing), a rename (dropping where the object is and
//! creating where it goes, for tables and views alike), and a multi-table transaction.

use super::{Target, on_namespace, on_table, on_view};
use crate::domain::TableIdent;
use crate::domain::WarehouseId;
use crate::domain::access::Privilege;
use crate::store::TabularKind;

/// What a caller asks to do, as far as the privileges it needs go.
#[derive(Debug, Clone, Copy)]
pub enum Operation<'a> {
    /// A commit to one table. Completing a staged create (the commit asserts the table does not
    /// exist yet) needs create rights in its namespace; any other commit writes the table's data.
    CommitTable {
        table: &'a TableIdent,
        completes_staged_create: bool,
    },
    /// Moving a table or view: dropping it where it is and creating it where it goes.
    Rename {
        kind: TabularKind,
        from: &'a TableIdent,
        to: &'a TableIdent,
    },
    /// A commit to several tables at once: each of them is written.
    CommitTransaction { tables: &'a [TableIdent] },
}

impl Operation<'_> {
    /// Every (target, privilege) the operation needs in `warehouse`, in the order they are
    /// checked (the first one missing is the one the denial names).
    pub fn needs(&self, warehouse: WarehouseId) -> Vec<(Target, Privilege)> {
        match *self {
            Operation::CommitTable {
                table,
                completes_staged_create: true,
            } => vec![(
                on_namespace(warehouse, &table.namespace),
                Privilege::TableCreate,
            )],
            Operation::CommitTable { table, .. } => {
                vec![(on_table(warehouse, table), Privilege::TableWriteData)]
            }
            Operation::Rename { kind, from, to } => {
                let (source, drop, create) = match kind {
                    TabularKind::Table => (
                        on_table(warehouse, from),
                        Privilege::TableDrop,
                        Privilege::TableCreate,
                    ),
                    TabularKind::View => (
                        on_view(warehouse, from),
                        Privilege::ViewDrop,
                        Privilege::ViewCreate,
                    ),
                };
                vec![
                    (source, drop),
                    (on_namespace(warehouse, &to.namespace), create),
                ]
            }
            Operation::CommitTransaction { tables } => tables
                .iter()
                .map(|t| (on_table(warehouse, t), Privilege::TableWriteData))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NamespaceIdent, ObjectName};

    fn ident(ns: &str, name: &str) -> TableIdent {
        TableIdent::new(
            NamespaceIdent::new(vec![ns.into()]).unwrap(),
            ObjectName::new(name).unwrap(),
        )
    }

    #[test]
    fn each_operation_needs_what_its_parts_do() {
        let wh = crate::domain::WarehouseId::now_v7();
        let (a, b) = (ident("a", "t"), ident("b", "u"));
        let staged = Operation::CommitTable {
            table: &a,
            completes_staged_create: true,
        };
        assert_eq!(
            staged.needs(wh),
            vec![(on_namespace(wh, &a.namespace), Privilege::TableCreate)]
        );
        let write = Operation::CommitTable {
            table: &a,
            completes_staged_create: false,
        };
        assert_eq!(
            write.needs(wh),
            vec![(on_table(wh, &a), Privilege::TableWriteData)]
        );
        let rename_view = Operation::Rename {
            kind: TabularKind::View,
            from: &a,
            to: &b,
        };
        assert_eq!(
            rename_view.needs(wh),
            vec![
                (on_view(wh, &a), Privilege::ViewDrop),
                (on_namespace(wh, &b.namespace), Privilege::ViewCreate)
            ]
        );
        let tables = [a.clone(), b.clone()];
        assert_eq!(
            Operation::CommitTransaction { tables: &tables }
                .needs(wh)
                .len(),
            2
        );
    }
}
