//! The operator portal (contract section 11): operators, sign-in lockout, sessions kept in the
//! database, the operator audit trail, and the search's card lookups by cardId and by PAN.

use super::*;
use d1_domain::card::Pan;
use d1_store::{
    AuditEntry, AuditQuery, NewOperator, NewSession, OperatorChange, OperatorIssuers, OperatorRole,
};

fn operator(username: &str, role: OperatorRole) -> NewOperator {
    NewOperator {
        username: username.into(),
        role,
        issuers: "BANK000001,BANK000002".parse().unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        must_change_password: true,
    }
}

fn session(id: u8, username: &str) -> NewSession {
    NewSession {
        id_hash: vec![id; 32],
        username: username.into(),
        csrf_token: format!("csrf-{id}"),
    }
}

fn entry(at: i64, operator: &str, action: &str) -> AuditEntry {
    AuditEntry {
        at,
        operator: operator.into(),
        action: action.into(),
        issuer_id: Some("BANK000001".into()),
        consumer_id: None,
        card_id: Some("k1".into()),
        outcome: "ok".into(),
    }
}

#[test]
fn roles_are_ordered_and_issuers_read_back_as_written() {
    assert!(OperatorRole::Cci < OperatorRole::Manager);
    assert!(OperatorRole::Manager < OperatorRole::Admin);
    for role in [
        OperatorRole::Cci,
        OperatorRole::Manager,
        OperatorRole::Admin,
    ] {
        assert_eq!(role.as_str().parse::<OperatorRole>().unwrap(), role);
    }
    assert!("root".parse::<OperatorRole>().is_err());
    let some: OperatorIssuers = "BANK000001, BANK000002".parse().unwrap();
    assert_eq!(some.to_string(), "BANK000001,BANK000002");
    assert!(some.allows(&IssuerId::parse("BANK000002").unwrap()));
    assert!(!some.allows(&IssuerId::parse("BANK000003").unwrap()));
    assert_eq!(
        "all".parse::<OperatorIssuers>().unwrap(),
        OperatorIssuers::All
    );
    assert!(OperatorIssuers::All.allows(&IssuerId::parse("BANK000003").unwrap()));
    assert!("".parse::<OperatorIssuers>().is_err());
    assert!("BANK000001,nope".parse::<OperatorIssuers>().is_err());
}

#[tokio::test]
async fn an_operator_is_added_once_changed_and_listed_by_username() {
    let f = fresh().await;
    let store = f.store.as_ref();
    store
        .add_operator(operator("zoe", OperatorRole::Cci))
        .await
        .unwrap();
    store
        .add_operator(operator("adam", OperatorRole::Admin))
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_operator(operator("zoe", OperatorRole::Admin))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let zoe = store.operator("zoe").await.unwrap().unwrap();
    assert_eq!(zoe.role, OperatorRole::Cci);
    assert!(zoe.must_change_password && !zoe.disabled);
    assert_eq!((zoe.failed_sign_ins, zoe.locked_until), (0, None));
    assert!(zoe.created_at > 0 && zoe.created_at == zoe.updated_at);
    assert!(!format!("{zoe:?}").contains("argon2"), "no hash in Debug");

    let change = OperatorChange {
        role: Some(OperatorRole::Manager),
        issuers: Some(OperatorIssuers::All),
        ..OperatorChange::default()
    };
    store.change_operator("zoe", change).await.unwrap();
    let zoe = store.operator("zoe").await.unwrap().unwrap();
    assert_eq!(zoe.role, OperatorRole::Manager);
    assert_eq!(zoe.issuers, OperatorIssuers::All);
    assert!(zoe.must_change_password, "what was not asked stays");
    assert!(zoe.password_hash.starts_with("$argon2id$"));
    assert!(matches!(
        store
            .change_operator("ghost", OperatorChange::default())
            .await,
        Err(StoreError::NotFound)
    ));
    let names: Vec<String> = store
        .operators()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.username)
        .collect();
    assert_eq!(names, ["adam", "zoe"]);
    assert!(store.operator("ghost").await.unwrap().is_none());
}

#[tokio::test]
async fn disabling_an_operator_ends_its_sessions_and_only_its_own() {
    let f = fresh().await;
    let store = f.store.as_ref();
    for name in ["ann", "bob"] {
        store
            .add_operator(operator(name, OperatorRole::Cci))
            .await
            .unwrap();
    }
    store.create_session(session(1, "ann")).await.unwrap();
    store.create_session(session(2, "ann")).await.unwrap();
    store.create_session(session(3, "bob")).await.unwrap();
    let long = 3_600_000;
    let found = store.session(&[1; 32], long, long).await.unwrap().unwrap();
    assert_eq!(
        (found.username.as_str(), found.csrf_token.as_str()),
        ("ann", "csrf-1")
    );
    store.disable_operator("ann").await.unwrap();
    assert!(store.operator("ann").await.unwrap().unwrap().disabled);
    assert!(store.session(&[1; 32], long, long).await.unwrap().is_none());
    assert!(store.session(&[2; 32], long, long).await.unwrap().is_none());
    assert!(store.session(&[3; 32], long, long).await.unwrap().is_some());
    assert!(matches!(
        store.disable_operator("ghost").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.create_session(session(4, "ghost")).await,
        Err(StoreError::NotFound)
    ));
    store.delete_sessions_of("bob").await.unwrap();
    assert!(store.session(&[3; 32], long, long).await.unwrap().is_none());
}

#[tokio::test]
async fn five_failed_sign_ins_lock_and_a_success_or_a_new_password_clears_the_count() {
    let f = fresh().await;
    let store = f.store.as_ref();
    store
        .add_operator(operator("ann", OperatorRole::Cci))
        .await
        .unwrap();
    let lock_ms = 900_000;
    for n in 1..=4 {
        assert_eq!(
            store
                .record_failed_sign_in("ann", 5, lock_ms)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .operator("ann")
                .await
                .unwrap()
                .unwrap()
                .failed_sign_ins,
            n
        );
    }
    let before = d1_store::now_ms();
    let until = store
        .record_failed_sign_in("ann", 5, lock_ms)
        .await
        .unwrap()
        .expect("the fifth failure locks");
    assert!(until >= before + lock_ms && until <= d1_store::now_ms() + lock_ms);
    let ann = store.operator("ann").await.unwrap().unwrap();
    assert_eq!((ann.failed_sign_ins, ann.locked_until), (0, Some(until)));
    assert!(ann.is_locked(d1_store::now_ms()) && !ann.is_locked(until));

    store.record_sign_in("ann").await.unwrap();
    let ann = store.operator("ann").await.unwrap().unwrap();
    assert_eq!((ann.failed_sign_ins, ann.locked_until), (0, None));

    for _ in 0..3 {
        store
            .record_failed_sign_in("ann", 5, lock_ms)
            .await
            .unwrap();
    }
    store.record_sign_in("ann").await.unwrap();
    assert_eq!(
        store
            .operator("ann")
            .await
            .unwrap()
            .unwrap()
            .failed_sign_ins,
        0
    );

    for _ in 0..5 {
        store
            .record_failed_sign_in("ann", 5, lock_ms)
            .await
            .unwrap();
    }
    store
        .record_failed_sign_in("ann", 5, lock_ms)
        .await
        .unwrap();
    let ann = store.operator("ann").await.unwrap().unwrap();
    assert!(ann.locked_until.is_some() && ann.failed_sign_ins == 1);
    let change = OperatorChange {
        password_hash: Some("$argon2id$new".into()),
        must_change_password: Some(false),
        ..OperatorChange::default()
    };
    store.change_operator("ann", change).await.unwrap();
    let ann = store.operator("ann").await.unwrap().unwrap();
    assert_eq!((ann.failed_sign_ins, ann.locked_until), (0, None));
    assert_eq!(ann.password_hash, "$argon2id$new");
    assert!(!ann.must_change_password);
    assert_eq!(
        store
            .record_failed_sign_in("ghost", 5, lock_ms)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn failed_sign_ins_counted_at_once_are_all_counted() {
    let f = fresh().await;
    let store = Arc::clone(&f.store);
    store
        .add_operator(operator("ann", OperatorRole::Cci))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.record_failed_sign_in("ann", 5, 60_000).await })
        })
        .collect();
    let mut locks = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_some() {
            locks += 1;
        }
    }
    assert_eq!(locks, 2, "10 failures are two locks of 5");
    assert_eq!(
        store
            .operator("ann")
            .await
            .unwrap()
            .unwrap()
            .failed_sign_ins,
        0
    );
}

#[tokio::test]
async fn a_session_ends_when_idle_or_too_old_and_is_deleted() {
    let f = fresh().await;
    let store = f.store.as_ref();
    store
        .add_operator(operator("ann", OperatorRole::Cci))
        .await
        .unwrap();
    store.create_session(session(1, "ann")).await.unwrap();
    store.create_session(session(2, "ann")).await.unwrap();
    let first = store
        .session(&[1; 32], 60_000, 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.created_at, first.last_seen_at);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    // Idle for longer than 200 ms: gone, and gone for good.
    assert!(store
        .session(&[1; 32], 200, 60_000)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .session(&[1; 32], 60_000, 60_000)
        .await
        .unwrap()
        .is_none());
    // Older than 200 ms, however recently used: gone.
    assert!(store
        .session(&[2; 32], 60_000, 200)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .session(&[2; 32], 60_000, 60_000)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .session(&[9; 32], 60_000, 60_000)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_page_view_writes_the_last_use_only_when_it_is_stale() {
    let f = fresh().await;
    let store = f.store.as_ref();
    store
        .add_operator(operator("ann", OperatorRole::Cci))
        .await
        .unwrap();
    store.create_session(session(1, "ann")).await.unwrap();
    let created = store
        .session(&[1; 32], 60_000, 60_000)
        .await
        .unwrap()
        .unwrap();
    let writes = store.write_activity().transactions;
    let again = store
        .session(&[1; 32], 60_000, 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.last_seen_at, created.last_seen_at);
    assert_eq!(
        store.write_activity().transactions,
        writes,
        "a fresh session is not written"
    );
    // A last use 40 s ago is written again; the session lives on.
    tamper(
        &f,
        "UPDATE operator_sessions SET last_seen_at = last_seen_at - 40000, \
         created_at = created_at - 40000",
    )
    .await;
    let touched = store
        .session(&[1; 32], 60_000, 60_000)
        .await
        .unwrap()
        .unwrap();
    assert!(touched.last_seen_at >= created.last_seen_at);
    let read = store
        .session(&[1; 32], 60_000, 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.last_seen_at, touched.last_seen_at,
        "the new last use was stored"
    );
    assert_eq!(read.created_at, created.created_at - 40_000);
    store.delete_session(&[1; 32]).await.unwrap();
    assert!(store
        .session(&[1; 32], 60_000, 60_000)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_audit_trail_reads_newest_first_by_operator_since_and_limit() {
    let f = fresh().await;
    let store = f.store.as_ref();
    store
        .append_audit(entry(1_000, "ann", "sign-in"))
        .await
        .unwrap();
    store
        .append_audit(entry(2_000, "bob", "search"))
        .await
        .unwrap();
    store
        .append_audit(entry(3_000, "ann", "card.suspend"))
        .await
        .unwrap();
    let mut bare = entry(3_000, "ann", "reveal");
    bare.issuer_id = None;
    bare.card_id = None;
    store.append_audit(bare.clone()).await.unwrap();
    let all = |operator: Option<&str>, since, limit| AuditQuery {
        operator: operator.map(Into::into),
        since,
        limit,
    };
    let actions = |entries: Vec<AuditEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.action).collect()
    };
    let every = store.audit(all(None, None, 100)).await.unwrap();
    assert_eq!(every[0], bare, "every field read back, absent ones absent");
    assert_eq!(
        actions(every),
        ["reveal", "card.suspend", "search", "sign-in"]
    );
    assert_eq!(
        actions(store.audit(all(Some("ann"), None, 100)).await.unwrap()),
        ["reveal", "card.suspend", "sign-in"]
    );
    assert_eq!(
        actions(store.audit(all(None, Some(2_000), 100)).await.unwrap()),
        ["reveal", "card.suspend", "search"]
    );
    assert_eq!(
        actions(store.audit(all(Some("ann"), Some(2_000), 1)).await.unwrap()),
        ["reveal"]
    );
    assert!(store
        .audit(all(Some("carl"), None, 10))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_card_is_located_by_card_id_or_pan_in_its_own_issuer_only() {
    let f = fresh().await;
    let store = f.store.as_ref();
    let other = IssuerId::parse("BANK000002").unwrap();
    store
        .register_card(super::cards::card("k1", "c1", "4111111111111111"))
        .await
        .unwrap();
    let mut theirs = super::cards::card("k2", "c2", "4111111111111129");
    theirs.issuer_id = other.clone();
    store.register_card(theirs).await.unwrap();

    assert_eq!(
        store.locate_card(&issuer(), "k1").await.unwrap(),
        Some(consumer("c1"))
    );
    assert_eq!(store.locate_card(&other, "k1").await.unwrap(), None);
    assert_eq!(store.locate_card(&issuer(), "k2").await.unwrap(), None);
    let pan = |digits: &str| Pan::parse(digits, "pan").unwrap();
    assert_eq!(
        store
            .locate_card_by_pan(&issuer(), &pan("4111111111111111"))
            .await
            .unwrap(),
        Some((consumer("c1"), "k1".to_owned()))
    );
    assert_eq!(
        store
            .locate_card_by_pan(&issuer(), &pan("4111111111111129"))
            .await
            .unwrap(),
        None,
        "another issuer's PAN is not found"
    );
    assert_eq!(
        store
            .locate_card_by_pan(&other, &pan("4111111111111129"))
            .await
            .unwrap(),
        Some((consumer("c2"), "k2".to_owned()))
    );
    // A deleted card is still found, by either key.
    store.delete_consumer(delete("c1")).await.unwrap();
    assert_eq!(
        store.locate_card(&issuer(), "k1").await.unwrap(),
        Some(consumer("c1"))
    );
    assert_eq!(
        store
            .locate_card_by_pan(&issuer(), &pan("4111111111111111"))
            .await
            .unwrap(),
        Some((consumer("c1"), "k1".to_owned()))
    );
}

#[tokio::test]
async fn the_card_lookups_use_their_indexes() {
    let f = fresh().await;
    let Some(path) = f.url.strip_prefix("sqlite://") else {
        return; // The plans below are SQLite's; PostgreSQL picks by table statistics.
    };
    let conn = rusqlite::Connection::open(path).unwrap();
    let plan = |sql: &str| -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        rows.join("\n")
    };
    let by_id = plan(
        "SELECT c.consumer_id FROM cards k JOIN consumers c ON c.id = k.consumer_ref
         WHERE k.issuer_id = 'B' AND k.card_id = 'k1' ORDER BY k.id DESC LIMIT 1",
    );
    assert!(by_id.contains("USING INDEX cards_by_card_id"), "{by_id}");
    let by_pan = plan(
        "SELECT c.consumer_id, k.card_id FROM cards k JOIN consumers c ON c.id = k.consumer_ref
         WHERE k.issuer_id = 'B' AND k.pan_mac = x'00'",
    );
    assert!(by_pan.contains("USING INDEX cards_by_pan"), "{by_pan}");
    assert!(!by_pan.contains("SCAN"), "{by_pan}");
    let audit = plan(
        "SELECT at FROM operator_audit WHERE operator = 'a' AND at >= 0
         ORDER BY at DESC, id DESC LIMIT 5",
    );
    assert!(audit.contains("operator_audit_by_operator"), "{audit}");
}
