//! The v1 reading of the operations trail: by offset and count, newest first.

use super::*;

/// The whole trail as the v2 pages read it, newest first: one page, which must be the last.
pub(super) async fn everything(store: &dyn Store, id: &str) -> Vec<d1_store::OperationRecord> {
    let page = store
        .operations(&issuer(), &consumer(id), 200, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.next, None, "the trail is longer than one page");
    page.operations
}

async fn at(store: &dyn Store, id: &str, offset: u64, count: u32) -> Option<Vec<String>> {
    store
        .operations_at(&issuer(), &consumer(id), offset, count)
        .await
        .unwrap()
        .map(|ops| ops.into_iter().map(|o| o.operation_id).collect())
}

#[tokio::test]
async fn the_trail_reads_by_offset_from_the_most_recent_entry() {
    let f = fresh().await;
    let store = f.store.as_ref();
    for name in ["Ann", "Bob", "Cy", "Di"] {
        store
            .register_consumer(register("c1", Some(pi(name))))
            .await
            .unwrap();
    }
    store.delete_consumer(delete("c1")).await.unwrap();
    let all = everything(store, "c1").await;
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].operation, OperationKind::Delete, "newest first");
    let ids: Vec<String> = all.iter().map(|o| o.operation_id.clone()).collect();

    let first = store
        .operations_at(&issuer(), &consumer("c1"), 0, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, all, "the same entries as the v2 trail, whole");
    assert_eq!(at(store, "c1", 0, 1).await.unwrap(), ids[..1]);
    assert_eq!(at(store, "c1", 1, 2).await.unwrap(), ids[1..3]);
    assert_eq!(at(store, "c1", 3, 100).await.unwrap(), ids[3..]);
    assert_eq!(at(store, "c1", 4, 10).await.unwrap(), ids[4..]);
    assert!(
        at(store, "c1", 5, 10).await.unwrap().is_empty(),
        "past the end"
    );
    assert!(at(store, "c1", u64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(at(store, "nobody", 0, 10).await, None);

    // A consumerId registered again reads on, its earlier life's entries included.
    store.register_consumer(register("c1", None)).await.unwrap();
    let again = at(store, "c1", 0, 100).await.unwrap();
    assert_eq!(again.len(), 6);
    assert_eq!(again[1..], ids[..]);
}
