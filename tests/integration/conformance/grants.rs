//! Roles, grants and their members.

use std::sync::Arc;

use floe::admin::upgrade_name_keyed_grants;
use floe::changes::Change;
use floe::domain::access::GrantResource;
use floe::store::*;
use uuid::Uuid;

use super::fixtures::*;

pub async fn roles_grants_and_assignments(store: Arc<dyn CatalogStore>) {
    let (t1, t2) = (
        floe::domain::TenantId::new_v4(),
        floe::domain::TenantId::new_v4(),
    );
    let role = RoleRecord {
        id: floe::domain::RoleId::new_v4(),
        tenant_id: t1,
        name: "readers".into(),
        created_at_ms: 1,
    };
    store.create_role(&role, &Change::Grants).await.unwrap();
    let dup = RoleRecord {
        id: floe::domain::RoleId::new_v4(),
        ..role.clone()
    };
    assert!(matches!(
        store.create_role(&dup, &Change::Grants).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let other_tenant = RoleRecord {
        id: floe::domain::RoleId::new_v4(),
        tenant_id: t2,
        ..role.clone()
    };
    store
        .create_role(&other_tenant, &Change::Grants)
        .await
        .unwrap();
    assert_eq!(store.list_roles(t1).await.unwrap(), vec![role.clone()]);

    let p = principal(t1, "ann");
    store
        .create_principal(&p, &Change::Principal { principal: p.id })
        .await
        .unwrap();
    store
        .create_principal(&principal(t2, "bob"), &Change::Everything)
        .await
        .unwrap();
    assert_eq!(store.list_principals(t1).await.unwrap(), vec![p.clone()]);
    store
        .assign_role(p.id, role.id, &Change::Grants)
        .await
        .unwrap();
    assert_eq!(store.roles_of(p.id).await.unwrap(), vec![role.id]);

    let grant = |resource: GrantResource, privilege| GrantRecord {
        id: Uuid::new_v4(),
        tenant_id: t1,
        role_id: role.id,
        resource,
        privilege,
        created_at_ms: 1,
    };
    let g1 = grant(
        GrantResource::Tenant,
        floe::domain::access::Privilege::TenantAdmin,
    );
    let g2 = grant(
        GrantResource::Namespace {
            warehouse: floe::domain::WarehouseId::new_v4(),
            namespace: ns(&["a"]),
        },
        floe::domain::access::Privilege::TableReadData,
    );
    store.create_grant(&g1, &Change::Grants).await.unwrap();
    store.create_grant(&g2, &Change::Grants).await.unwrap();
    let again = GrantRecord {
        id: Uuid::new_v4(),
        ..g1.clone()
    };
    assert!(matches!(
        store.create_grant(&again, &Change::Grants).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.list_grants(t1, Some(role.id)).await.unwrap().len(), 2);
    assert!(store.list_grants(t2, None).await.unwrap().is_empty());
    assert_eq!(
        store
            .delete_grant(t2, g1.id, &Change::Grants)
            .await
            .unwrap(),
        None,
        "another tenant's id does not match"
    );
    assert_eq!(
        store
            .delete_grant(t1, g1.id, &Change::Grants)
            .await
            .unwrap(),
        Some(g1)
    );
    assert_eq!(store.list_grants(t1, None).await.unwrap(), vec![g2]);

    store
        .unassign_role(p.id, role.id, &Change::Grants)
        .await
        .unwrap();
    assert!(store.roles_of(p.id).await.unwrap().is_empty());
    assert!(matches!(
        store.unassign_role(p.id, role.id, &Change::Grants).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .assign_role(p.id, role.id, &Change::Grants)
        .await
        .unwrap();
    store.delete_role(role.id, &Change::Grants).await.unwrap();
    assert!(
        store.roles_of(p.id).await.unwrap().is_empty(),
        "deleting a role removes its assignments"
    );
    assert!(
        store.list_grants(t1, None).await.unwrap().is_empty(),
        "and its grants"
    );
    store
        .delete_principal(p.id, &Change::Principal { principal: p.id })
        .await
        .unwrap();
    assert_eq!(store.get_principal_by_client_id("ann").await.unwrap(), None);
}

pub async fn name_keyed_grants_upgrade_to_ids(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    let tenant = store.get_warehouse(wh).await.unwrap().unwrap().tenant_id;
    store
        .create_namespace(wh, &namespace(&["a"]))
        .await
        .unwrap();
    let t = tabular(TabularKind::Table, &ident(&["a"], "t"), "m");
    let v = tabular(TabularKind::View, &ident(&["a"], "v"), "m");
    store.create_tabular(wh, &t).await.unwrap();
    store.create_tabular(wh, &v).await.unwrap();
    let role = RoleRecord {
        id: floe::domain::RoleId::new_v4(),
        tenant_id: tenant,
        name: "r".into(),
        created_at_ms: 1,
    };
    store.create_role(&role, &Change::Grants).await.unwrap();
    let legacy = |resource| GrantRecord {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        role_id: role.id,
        resource,
        privilege: floe::domain::access::Privilege::TableReadData,
        created_at_ms: 1,
    };
    let on_table = legacy(GrantResource::TableByName {
        warehouse: wh,
        table: t.ident.clone(),
    });
    let on_view = legacy(GrantResource::ViewByName {
        warehouse: wh,
        view: v.ident.clone(),
    });
    let on_gone = legacy(GrantResource::TableByName {
        warehouse: wh,
        table: ident(&["a"], "gone"),
    });
    let on_view_as_table = legacy(GrantResource::TableByName {
        warehouse: wh,
        table: v.ident.clone(),
    });
    for g in [&on_table, &on_view, &on_gone, &on_view_as_table] {
        store.create_grant(g, &Change::Grants).await.unwrap();
    }
    assert_eq!(upgrade_name_keyed_grants(store.as_ref()).await.unwrap(), 4);
    let mut upgraded: Vec<_> = store
        .list_grants(tenant, None)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.id, g.resource))
        .collect();
    upgraded.sort_by_key(|(id, _)| *id);
    let mut expected = vec![
        (
            on_table.id,
            GrantResource::Table {
                warehouse: wh,
                table: t.id,
            },
        ),
        (
            on_view.id,
            GrantResource::View {
                warehouse: wh,
                view: v.id,
            },
        ),
    ];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(upgraded, expected, "grants on missing objects are deleted");
    assert_eq!(upgrade_name_keyed_grants(store.as_ref()).await.unwrap(), 0);
}
