use super::schema::SCHEMA;
use super::*;
use netsend_control::types::SentKind;

fn msg(to: &str, user: Option<&str>, text: &str) -> NewMessage {
    NewMessage {
        from: "BOB".into(),
        to: to.into(),
        recipient_user: user.map(String::from),
        source: "192.0.2.20:5000".into(),
        text: text.into(),
        transport: Transport::Session,
        broadcast: false,
        verified_host: None,
        claimed_by: None,
    }
}

async fn ids(inbox: &InboxHandle, filter: &ListFilter) -> Vec<i64> {
    inbox
        .list(filter)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect()
}

fn all() -> ListFilter {
    ListFilter {
        limit: usize::MAX,
        ..ListFilter::default()
    }
}

#[tokio::test]
async fn a_tagged_repeat_is_stored_once_even_in_one_batch_and_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let inbox = Inbox::open(&path, 2).unwrap();
    let key = "192.0.2.1/0102030405060708".to_owned();
    // Sent at once, the two share a batch: the second still sees the first.
    let (first, second) = tokio::join!(
        inbox.store_once(msg("ALICE", Some("alice"), "once"), key.clone()),
        inbox.store_once(msg("ALICE", Some("alice"), "once"), key.clone()),
    );
    let id = first.unwrap().id;
    assert!(matches!(second, Err(InboxError::Repeat(r)) if r == id));
    // The same tag from another address is another message.
    let other = inbox
        .store_once(
            msg("ALICE", Some("alice"), "once"),
            "192.0.2.2/0102030405060708".to_owned(),
        )
        .await
        .unwrap();
    assert_ne!(other.id, id);
    inbox.close().await;
    drop(inbox);
    // The quota (2) is full now, and a repeat takes no room: still a repeat.
    let reopened = Inbox::open(&path, 2).unwrap();
    assert!(matches!(
        reopened.store_once(msg("ALICE", Some("alice"), "once"), key).await,
        Err(InboxError::Repeat(r)) if r == id
    ));
    assert_eq!(reopened.count().await.unwrap(), 2);
}

#[tokio::test]
async fn store_list_read_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let inbox = Inbox::open(&path, 0).unwrap();
    let a = inbox
        .store(msg("HOST", None, "to everyone"))
        .await
        .unwrap()
        .id;
    let b = inbox
        .store(msg("ALICE", Some("alice"), "for alice"))
        .await
        .unwrap()
        .id;
    let c = inbox
        .store(msg("CAROL", Some("carol"), "for carol"))
        .await
        .unwrap()
        .id;
    assert!(a < b && b < c);
    assert_eq!(inbox.list(&all()).await.unwrap().len(), 3);
    let alice = ListFilter {
        user: Some("alice".into()),
        ..all()
    };
    let texts: Vec<String> = inbox
        .list(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["to everyone", "for alice"]);
    assert!(inbox.get(c, Some("alice")).await.unwrap().is_none());
    assert!(!inbox.mark_read(c, Some("alice")).await.unwrap());
    assert!(inbox.mark_read(b, Some("alice")).await.unwrap());
    let unread = ListFilter {
        unread_only: true,
        ..all()
    };
    assert_eq!(inbox.list(&unread).await.unwrap().len(), 2);
    let after = ListFilter {
        after_id: Some(b),
        ..all()
    };
    assert_eq!(inbox.list(&after).await.unwrap()[0].id, c);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    inbox.check_integrity().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_stores_are_all_durable_when_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let inbox = Inbox::open(&path, 0).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let inbox = inbox.clone();
            let path = path.clone();
            tokio::spawn(async move {
                let id = inbox
                    .store(msg("HOST", None, &format!("m{i}")))
                    .await
                    .unwrap()
                    .id;
                // Acknowledged means committed: a fresh connection sees it.
                let fresh = Connection::open(&path).unwrap();
                let n: i64 = fresh
                    .query_row("SELECT COUNT(*) FROM messages WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })
                    .unwrap();
                assert_eq!(n, 1);
                id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    inbox.close().await;
    drop(inbox);
    let reopened = Inbox::open(&path, 0).unwrap();
    assert_eq!(reopened.count().await.unwrap(), 200);
}

#[tokio::test]
async fn oversized_text_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
    let big = "x".repeat(MAX_TEXT_LEN + 1);
    assert!(matches!(
        inbox.store(msg("H", None, &big)).await,
        Err(InboxError::TooLarge(_))
    ));
}

#[tokio::test]
async fn quota_is_per_inbox_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.db");
    let inbox = Inbox::open(&path, 3).unwrap();
    // Concurrent stores land in one batch; the quota still holds exactly.
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                inbox
                    .store(msg("ALICE", Some("alice"), &format!("{i}")))
                    .await
            })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => stored += 1,
            Err(InboxError::QuotaExceeded(who)) => assert_eq!(who, "alice"),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(stored, 3);
    // Another user's inbox and the shared one are not affected.
    inbox.store(msg("BOB", Some("bob"), "hi")).await.unwrap();
    inbox.store(msg("HOST", None, "hi")).await.unwrap();
    inbox.close().await;
    drop(inbox);
    let reopened = Inbox::open(&path, 3).unwrap();
    assert!(matches!(
        reopened.store(msg("ALICE", Some("alice"), "more")).await,
        Err(InboxError::QuotaExceeded(_))
    ));
    assert_eq!(reopened.count().await.unwrap(), 5);
}

#[tokio::test]
async fn a_version_1_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch("PRAGMA user_version = 1;").unwrap();
        conn.execute(
            "INSERT INTO messages (received_at, from_name, to_alias, recipient_user, source, text, transport, broadcast)
             VALUES (1, 'BOB', 'ALICE', 'alice', 'x', 'kept', 'session', 0)",
            [],
        )
        .unwrap();
    }
    let inbox = Inbox::open(&path, 0).unwrap();
    let listed = inbox.list(&all()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].text, "kept");
    assert_eq!((listed[0].shown_at, listed[0].read_at), (None, None));
    assert_eq!(listed[0].trust_mark(), "unverified");
    assert!(inbox.mark_shown(listed[0].id, Some("alice")).await.unwrap());
    inbox.close().await;
    drop(inbox);
    // Opening again does not migrate twice.
    let again = Inbox::open(&path, 0).unwrap();
    assert!(again.list(&all()).await.unwrap()[0].shown_at.is_some());
}

#[tokio::test]
async fn receipts_search_and_deletion_rules() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(&dir.path().join("i.db"), 2).unwrap();
    let own = inbox
        .store(msg("ALICE", Some("alice"), "lunch at noon"))
        .await
        .unwrap()
        .id;
    let shared = inbox
        .store(msg("HOST", None, "server going DOWN"))
        .await
        .unwrap()
        .id;
    let bobs = inbox
        .store(msg("BOB", Some("bob"), "for bob"))
        .await
        .unwrap()
        .id;
    let alice = |search: Option<&str>| ListFilter {
        user: Some("alice".into()),
        limit: 100,
        search: search.map(String::from),
        ..ListFilter::default()
    };
    // Search: sender, alias or text; ASCII case-insensitive; wildcards literal.
    assert_eq!(ids(&inbox, &alice(Some("down"))).await, [shared]);
    assert_eq!(ids(&inbox, &alice(Some("NOON"))).await, [own]);
    let zoe = inbox
        .store(msg("ALICE", Some("alice"), "Grüße von ZOË"))
        .await
        .unwrap()
        .id;
    assert_eq!(ids(&inbox, &alice(Some("zoë"))).await, [zoe]);
    assert_eq!(ids(&inbox, &alice(Some("GRÜSSE"))).await, Vec::<i64>::new());
    inbox
        .delete(Deletion {
            ids: vec![zoe],
            read: false,
            user: None,
        })
        .await
        .unwrap();
    assert!(ids(&inbox, &alice(Some("%"))).await.is_empty());
    // Receipts.
    assert!(inbox.mark_read(own, Some("alice")).await.unwrap());
    let m = inbox.get(own, Some("alice")).await.unwrap().unwrap();
    assert!(m.read_at.is_some() && m.shown_at.is_some());
    assert_eq!(m.state(), "read");
    // Alice cannot touch Bob's message; her own is deleted, the shared
    // one only hidden from her.
    let deleted = inbox
        .delete(Deletion {
            ids: vec![own, shared, bobs],
            read: false,
            user: Some("alice".into()),
        })
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert!(ids(&inbox, &alice(None)).await.is_empty());
    let root: Vec<i64> = inbox
        .list(&all())
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(root, [shared, bobs]);
    // Deleting freed Alice's quota (2 per inbox).
    for text in ["a", "b"] {
        inbox
            .store(msg("ALICE", Some("alice"), text))
            .await
            .unwrap();
    }
    assert!(matches!(
        inbox.store(msg("ALICE", Some("alice"), "c")).await,
        Err(InboxError::QuotaExceeded(_))
    ));
}

#[tokio::test]
async fn each_user_reads_a_shared_message_for_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
    let shared = inbox
        .store(msg("HOST", None, "to everyone"))
        .await
        .unwrap()
        .id;
    let own = inbox
        .store(msg("ALICE", Some("alice"), "to alice"))
        .await
        .unwrap()
        .id;
    let view = |user: Option<&'static str>| {
        let inbox = inbox.clone();
        async move { inbox.get(shared, user).await.unwrap().unwrap() }
    };
    let unread = |user: &str| {
        let filter = ListFilter {
            user: Some(user.into()),
            unread_only: true,
            limit: 100,
            ..ListFilter::default()
        };
        let inbox = inbox.clone();
        async move { ids(&inbox, &filter).await }
    };
    // Alice reads it: read for her, and (first reader) for the sender's
    // receipt, which root sees; still unread for Bob.
    assert!(inbox.mark_read(shared, Some("alice")).await.unwrap());
    assert!(view(Some("alice")).await.read && view(Some("alice")).await.read_at.is_some());
    assert!(view(None).await.read && view(None).await.read_at.is_some());
    assert!(!view(Some("bob")).await.read && view(Some("bob")).await.read_at.is_none());
    assert_eq!(unread("alice").await, [own]);
    assert_eq!(unread("bob").await, [shared]);
    // Shown to Bob is not read by Bob.
    assert!(inbox.mark_shown(shared, Some("bob")).await.unwrap());
    assert!(view(Some("bob")).await.shown_at.is_some() && !view(Some("bob")).await.read);
    // `delete --read` goes by each user's own state: Bob has read
    // nothing, Alice hides the shared message from herself only.
    let read_ones = |user: &str| Deletion {
        ids: Vec::new(),
        read: true,
        user: Some(user.into()),
    };
    assert_eq!(inbox.delete(read_ones("bob")).await.unwrap(), 0);
    assert_eq!(inbox.delete(read_ones("alice")).await.unwrap(), 1);
    assert!(inbox.get(shared, Some("alice")).await.unwrap().is_none());
    assert_eq!(unread("bob").await, [shared]);
    // Deleted for good, its per-user receipts go with it.
    inbox
        .delete(Deletion {
            ids: vec![shared],
            read: false,
            user: None,
        })
        .await
        .unwrap();
    assert!(inbox.get(shared, None).await.unwrap().is_none());
    inbox.close().await;
    let conn = Connection::open(dir.path().join("i.db")).unwrap();
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM shared_reads", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn retention_by_count_takes_read_messages_first_then_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            inbox
                .store(msg("ALICE", Some("alice"), &format!("{i}")))
                .await
                .unwrap()
                .id,
        );
    }
    inbox.store(msg("BOB", Some("bob"), "bob's")).await.unwrap();
    inbox.mark_read(ids[3], None).await.unwrap();
    let removed = inbox
        .prune(Retention {
            max_age_ms: 0,
            max_per_inbox: 3,
            ..Retention::default()
        })
        .await
        .unwrap();
    assert_eq!(removed, 2);
    let left: Vec<String> = inbox
        .list(&all())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(left, ["1", "2", "4", "bob's"]);
    // By age: everything is younger than a day, nothing goes.
    let removed = inbox
        .prune(Retention {
            max_age_ms: 86_400_000,
            max_per_inbox: 0,
            ..Retention::default()
        })
        .await
        .unwrap();
    assert_eq!(removed, 0);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let removed = inbox
        .prune(Retention {
            max_age_ms: 1,
            max_per_inbox: 0,
            ..Retention::default()
        })
        .await
        .unwrap();
    assert_eq!(removed, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_past_its_cpu_budget_is_stopped_and_only_its_user_waits() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
    let endless = inbox.read(Some("mallory"), |conn| {
        let n: i64 = conn.query_row(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
             SELECT COUNT(*) FROM c",
            [],
            |r| r.get(0),
        )?;
        Ok(n)
    });
    let other = async {
        // Meanwhile other readers answer.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        inbox.count().await.unwrap();
        started.elapsed()
    };
    // The same user's next read waits for their first; another user's
    // does not.
    let own_next = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        inbox.read(Some("mallory"), |_| Ok(())).await.unwrap();
        std::time::Instant::now()
    };
    let alice = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        inbox.read(Some("alice"), |_| Ok(())).await.unwrap();
        started.elapsed()
    };
    let (endless, other, own_next, alice) = tokio::join!(
        async {
            let r = endless.await;
            (r, std::time::Instant::now())
        },
        other,
        own_next,
        alice
    );
    let (endless, stopped) = endless;
    assert!(matches!(endless, Err(InboxError::TooSlow)), "{endless:?}");
    assert!(other < std::time::Duration::from_secs(1), "{other:?}");
    assert!(alice < std::time::Duration::from_secs(1), "{alice:?}");
    assert!(
        own_next >= stopped,
        "mallory's second read ran beside the first"
    );
    // The reader that was stopped serves again.
    for _ in 0..readers::READERS {
        assert_eq!(inbox.count().await.unwrap(), 0);
    }
}

#[tokio::test]
async fn queue_and_sent_records_stay_bounded_per_user() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
    let add = |owner: &str, text: &str| QueueOp::Add {
        owner: owner.into(),
        to: "AWAY".into(),
        from: owner.into(),
        text: text.into(),
        expires_at: i64::MAX,
        next_try: i64::MAX,
        error: "2273".into(),
        max_per_owner: 2,
    };
    let first = inbox.queue(add("alice", "1")).await.unwrap();
    inbox.queue(add("alice", "2")).await.unwrap();
    assert!(matches!(
        inbox.queue(add("alice", "3")).await,
        Err(InboxError::QueueFull(2))
    ));
    // Another user's share is their own.
    inbox.queue(add("bob", "b")).await.unwrap();
    // A finished entry makes room; the table keeps two of Alice's.
    let cancel = QueueOp::Cancel {
        id: first,
        owner: Some("alice".into()),
    };
    assert_eq!(inbox.queue(cancel).await.unwrap(), 1);
    inbox.queue(add("alice", "3")).await.unwrap();
    let texts =
        |entries: Vec<Queued>| -> Vec<String> { entries.into_iter().map(|q| q.text).collect() };
    assert_eq!(
        texts(inbox.queued(Some("alice"), 0, 10).await.unwrap()),
        ["2", "3"]
    );
    // Pages: after an id, at most a limit.
    let all = inbox.queued(None, 0, 10).await.unwrap();
    assert_eq!(
        texts(inbox.queued(None, all[0].id, 1).await.unwrap()),
        [all[1].text.clone()]
    );
    // Sent records: the newest `keep` per owner.
    for i in 0..5 {
        let record = SentOp::Record(NewSent {
            owner: "alice".into(),
            to: format!("TO{i}"),
            from: "alice".into(),
            address: "192.0.2.9".into(),
            text: format!("text {i}"),
            kind: SentKind::Directed,
            outcome: "delivered".into(),
            queue_id: None,
            keep: 3,
        });
        inbox.sent_change(record).await.unwrap();
    }
    let mut kept = Vec::new();
    for id in 1..=5 {
        if let Some(r) = inbox.sent(id, Some("alice")).await.unwrap() {
            kept.push(r.to);
        }
    }
    assert_eq!(kept, ["TO2", "TO3", "TO4"]);
    // Ages: finished entries and sent records go; waiting entries stay.
    let done = QueueOp::Cancel {
        id: all[1].id,
        owner: None,
    };
    inbox.queue(done).await.unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let removed = inbox
        .prune(Retention {
            finished_max_age_ms: 1,
            sent_max_age_ms: 1,
            ..Retention::default()
        })
        .await
        .unwrap();
    assert_eq!(removed, 4);
    assert_eq!(inbox.queued(None, 0, 10).await.unwrap().len(), 2);
    assert!(inbox.sent(5, None).await.unwrap().is_none());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// The trigram index finds exactly the messages whose sender, alias
    /// or text contains the search text, in any case, as a scan would.
    #[test]
    fn search_finds_what_contains_the_text(
        texts in proptest::collection::vec("[abcAB \"%*_()éÉ-]{0,12}", 1..8),
        needle in "[abcAB \"%*_()éÉ-]{0,5}",
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
            let mut expected = Vec::new();
            for text in &texts {
                let id = inbox.store(msg("HOST", None, text)).await.unwrap().id;
                let folded = |s: &str| s.to_lowercase();
                if [text.as_str(), "HOST", "BOB"].iter().any(|f| folded(f).contains(&folded(&needle))) {
                    expected.push(id);
                }
            }
            let filter = ListFilter { search: Some(needle.clone()), ..all() };
            assert_eq!(ids(&inbox, &filter).await, expected, "{needle:?} in {texts:?}");
        });
    }
}

/// The writer's side of a batch: a connection counting its commits, and the
/// operations queued before the writer runs, so they are one batch.
mod batches {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::messages::Quota;
    use super::super::writer::{self, Command, Reply, WriteFailure, WriteOp};
    use super::super::{schema, StoredMessage};
    use super::*;

    struct Writer {
        path: std::path::PathBuf,
        conn: Connection,
        commits: Arc<AtomicUsize>,
        quota: u64,
        ops: Vec<WriteOp>,
        _dir: tempfile::TempDir,
    }

    impl Writer {
        fn new(quota: u64) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("i.db");
            let mut conn = schema::connect(&path).unwrap();
            schema::migrate(&mut conn).unwrap();
            let commits = Arc::new(AtomicUsize::new(0));
            let counted = commits.clone();
            conn.commit_hook(Some(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                false
            }))
            .unwrap();
            Self {
                path,
                conn,
                commits,
                quota,
                ops: Vec::new(),
                _dir: dir,
            }
        }

        fn store(
            &mut self,
            m: NewMessage,
        ) -> oneshot::Receiver<Result<StoredMessage, WriteFailure>> {
            let (reply, answer) = oneshot::channel();
            self.ops.push(WriteOp::Store(m, None, reply));
            answer
        }

        fn op(
            &mut self,
            op: impl FnOnce(Reply<i64>) -> WriteOp,
        ) -> oneshot::Receiver<Result<i64, WriteFailure>> {
            let (reply, answer) = oneshot::channel();
            self.ops.push(op(reply));
            answer
        }

        /// Runs the writer over everything queued; returns its commits and
        /// the newest id it announced.
        fn run(self) -> (usize, i64, std::path::PathBuf, tempfile::TempDir) {
            let (tx, rx) = tokio::sync::mpsc::channel(writer::QUEUE_LEN);
            for op in self.ops {
                tx.try_send(Command::Write(op)).unwrap();
            }
            drop(tx);
            let quota = Quota::load(&self.conn, self.quota).unwrap();
            let (stored, newest) = tokio::sync::watch::channel(0);
            writer::run(self.conn, rx, quota, &stored);
            let n = self.commits.load(Ordering::SeqCst);
            let newest = *newest.borrow();
            (n, newest, self.path, self._dir)
        }
    }

    fn stored_texts(path: &std::path::Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare("SELECT text FROM messages ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn one_batch_is_one_commit_and_every_operation_is_answered_after_it() {
        let mut w = Writer::new(0);
        let stores: Vec<_> = (0..20)
            .map(|i| w.store(msg("HOST", None, &format!("m{i}"))))
            .collect();
        let queued = w.op(|reply| {
            WriteOp::Queue(
                QueueOp::Add {
                    owner: "alice".into(),
                    to: "AWAY".into(),
                    from: "alice".into(),
                    text: "later".into(),
                    expires_at: i64::MAX,
                    next_try: i64::MAX,
                    error: "2273".into(),
                    max_per_owner: 10,
                },
                reply,
            )
        });
        let (commits, newest, path, _dir) = w.run();
        // The batch commits once; the writer, idle then, indexes it in a
        // second transaction of its own.
        assert_eq!(commits, 2);
        let stored: Vec<StoredMessage> = stores
            .into_iter()
            .map(|a| a.blocking_recv().unwrap().unwrap())
            .collect();
        // Each answer is the message as stored, in order, and durable.
        for (i, m) in stored.iter().enumerate() {
            assert_eq!(m.text, format!("m{i}"));
            assert!(m.received_at > 0 && !m.read && m.shown_at.is_none());
        }
        assert!(stored.windows(2).all(|p| p[0].id < p[1].id));
        assert_eq!(newest, stored.last().unwrap().id);
        assert!(queued.blocking_recv().unwrap().unwrap() > 0);
        assert_eq!(stored_texts(&path).len(), 20);
        // What the answer holds is what a read returns.
        let conn = schema::connect(&path).unwrap();
        let read = super::super::messages::get(&conn, stored[3].id, None)
            .unwrap()
            .unwrap();
        assert_eq!(read, stored[3]);
    }

    #[test]
    fn a_failed_operation_fails_alone_and_leaves_nothing_behind() {
        let mut w = Writer::new(3);
        // Refuse one text, and hiding anything from mallory.
        w.conn
            .execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN new.text = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END;
                 CREATE TRIGGER no_hiding BEFORE INSERT ON hidden WHEN new.user = 'mallory'
                 BEGIN SELECT RAISE(ABORT, 'no'); END;",
            )
            .unwrap();
        let own = insert_now(&w.conn, msg("MALLORY", Some("mallory"), "own"));
        let shared = insert_now(&w.conn, msg("HOST", None, "shared"));
        let before = w.commits.load(Ordering::SeqCst);
        let a = w.store(msg("HOST", None, "a"));
        let poison = w.store(msg("HOST", None, "poison"));
        // Deletes mallory's own message, then fails to hide the shared one:
        // the deletion must be undone with it.
        let delete = w.op(|reply| {
            WriteOp::Delete(
                Deletion {
                    ids: vec![own, shared],
                    read: false,
                    user: Some("mallory".into()),
                },
                reply,
            )
        });
        let b = w.store(msg("HOST", None, "b"));
        // Mallory holds 1 of 3: two more fit, the next does not (had the
        // failed deletion's -1 been kept, it would).
        let m1 = w.store(msg("MALLORY", Some("mallory"), "m1"));
        let m2 = w.store(msg("MALLORY", Some("mallory"), "m2"));
        let m3 = w.store(msg("MALLORY", Some("mallory"), "m3"));
        let commits = w.commits.clone();
        let (_, _, path, _dir) = w.run();
        // The batch, then the search index brought up to date.
        assert_eq!(commits.load(Ordering::SeqCst) - before, 2);
        assert!(a.blocking_recv().unwrap().is_ok());
        let poisoned = poison.blocking_recv().unwrap();
        assert!(
            matches!(poisoned, Err(WriteFailure::Database(_))),
            "{poisoned:?}"
        );
        assert!(matches!(
            delete.blocking_recv().unwrap(),
            Err(WriteFailure::Database(_))
        ));
        assert!(b.blocking_recv().unwrap().is_ok());
        assert!(m1.blocking_recv().unwrap().is_ok());
        assert!(m2.blocking_recv().unwrap().is_ok());
        assert!(matches!(
            m3.blocking_recv().unwrap(),
            Err(WriteFailure::Quota(Some(u))) if u == "mallory"
        ));
        assert_eq!(stored_texts(&path), ["own", "shared", "a", "b", "m1", "m2"]);
    }

    #[test]
    fn the_quota_counts_what_the_batch_stored_and_deleted_before_commit() {
        let mut w = Writer::new(3);
        let first = insert_now(&w.conn, msg("ALICE", Some("alice"), "0"));
        let before = w.commits.load(Ordering::SeqCst);
        let answers: Vec<_> = ["1", "2"]
            .into_iter()
            .map(|t| w.store(msg("ALICE", Some("alice"), t)))
            .collect();
        let over = w.store(msg("ALICE", Some("alice"), "over"));
        let deleted = w.op(|reply| {
            WriteOp::Delete(
                Deletion {
                    ids: vec![first],
                    read: false,
                    user: None,
                },
                reply,
            )
        });
        let three = w.store(msg("ALICE", Some("alice"), "3"));
        let four = w.store(msg("ALICE", Some("alice"), "4"));
        let bob = w.store(msg("BOB", Some("bob"), "bob"));
        let (commits, _, path, _dir) = w.run();
        // The batch, then the search index brought up to date.
        assert_eq!(commits - before, 2);
        for a in answers {
            assert!(a.blocking_recv().unwrap().is_ok());
        }
        assert!(matches!(
            over.blocking_recv().unwrap(),
            Err(WriteFailure::Quota(_))
        ));
        assert_eq!(deleted.blocking_recv().unwrap().unwrap(), 1);
        assert!(three.blocking_recv().unwrap().is_ok());
        assert!(matches!(
            four.blocking_recv().unwrap(),
            Err(WriteFailure::Quota(_))
        ));
        assert!(bob.blocking_recv().unwrap().is_ok());
        assert_eq!(stored_texts(&path), ["1", "2", "3", "bob"]);
    }

    /// Stores `m` at once, outside any batch; returns its id.
    fn insert_now(conn: &Connection, m: NewMessage) -> i64 {
        super::super::messages::insert(conn, m).unwrap().id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_what_came_before_and_ends_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.db");
    let inbox = Inbox::open(&path, 0).unwrap();
    let acknowledged = inbox.store(msg("HOST", None, "before")).await.unwrap();
    let racing: Vec<_> = (0..50)
        .map(|i| {
            let inbox = inbox.clone();
            tokio::spawn(async move { inbox.store(msg("HOST", None, &format!("r{i}"))).await })
        })
        .collect();
    inbox.close().await;
    // The writer's thread has ended: its end of the channel is gone, with
    // handles still alive.
    assert!(inbox.0.writer.is_closed());
    assert!(matches!(
        inbox.store(msg("HOST", None, "after")).await,
        Err(InboxError::Closed)
    ));
    // Every racing store was either committed and acknowledged, or refused.
    let mut committed = vec![acknowledged.id];
    for task in racing {
        match task.await.unwrap() {
            Ok(m) => committed.push(m.id),
            Err(InboxError::Closed) => {}
            Err(e) => panic!("{e}"),
        }
    }
    inbox.close().await;
    drop(inbox);
    let conn = Connection::open(&path).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM messages ORDER BY id").unwrap();
    let on_disk: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    committed.sort_unstable();
    assert_eq!(on_disk, committed);
}

/// A message the search index does not hold yet (stored while the writer
/// was busy) is found by scanning; the writer, once idle, indexes it, and
/// removing rows on either side of the index's edge keeps the index whole.
#[tokio::test]
async fn messages_not_yet_indexed_are_found_and_the_index_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.db");
    let inbox = Inbox::open(&path, 0).unwrap();
    inbox.store(msg("HOST", None, "first")).await.unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let insert = |text: &str| {
        conn.execute(
            "INSERT INTO messages (received_at, from_name, to_alias, source, text, transport)
             VALUES (1, 'EVE', 'HOST', '192.0.2.9:1', ?1, 'session')",
            [text],
        )
        .unwrap();
        conn.last_insert_rowid()
    };
    let upto = || -> i64 {
        conn.query_row("SELECT indexed_upto FROM fts_progress", [], |r| r.get(0))
            .unwrap()
    };
    let late = insert("a NÉEDLE in a haystack");
    let gone = insert("another needle, removed before it is indexed");
    assert!(upto() < late, "not indexed yet");
    let needle = ListFilter {
        search: Some("néedle".into()),
        ..all()
    };
    assert_eq!(ids(&inbox, &needle).await, vec![late]);
    conn.execute("DELETE FROM messages WHERE id = ?1", [gone])
        .unwrap();
    // A store leaves the writer idle after its commit: it indexes the rest.
    inbox.store(msg("HOST", None, "second")).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while upto() < late {
        assert!(
            std::time::Instant::now() < deadline,
            "the index never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(ids(&inbox, &needle).await, vec![late]);
    conn.execute("DELETE FROM messages WHERE id = ?1", [late])
        .unwrap();
    assert!(ids(&inbox, &needle).await.is_empty());
    conn.execute(
        "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')",
        [],
    )
    .expect("the index matches the messages");
}

#[tokio::test]
async fn trust_marks_are_stored_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(&dir.path().join("inbox.db"), 0).unwrap();
    let verified = NewMessage {
        transport: Transport::Remote,
        verified_host: Some("HOSTA".into()),
        ..msg("ALICE", Some("alice"), "signed")
    };
    let spoofed = NewMessage {
        claimed_by: Some("HOSTA".into()),
        ..msg("ALICE", Some("alice"), "spoofed")
    };
    let stored = inbox.store(verified).await.unwrap();
    assert_eq!(stored.trust_mark(), "verified HOSTA");
    inbox.store(spoofed).await.unwrap();
    let listed = inbox.list(&all()).await.unwrap();
    let marks: Vec<_> = listed
        .iter()
        .map(|m| (m.transport, m.trust_mark()))
        .collect();
    assert_eq!(
        marks,
        [
            (Transport::Remote, "verified HOSTA".to_owned()),
            (
                Transport::Session,
                "unverified: claims BOB, which HOSTA uses verified".to_owned()
            )
        ]
    );
    let got = inbox.get(stored.id, Some("alice")).await.unwrap().unwrap();
    assert_eq!(got.verified_host.as_deref(), Some("HOSTA"));
    let later = NewMessage {
        from: "bob".into(),
        verified_host: Some("HOSTC".into()),
        ..msg("ALICE", None, "later")
    };
    inbox.store(later).await.unwrap();
    assert_eq!(
        inbox.verified_senders(10).await.unwrap(),
        [("BOB".to_owned(), "HOSTA".to_owned())]
    );
    assert!(inbox.verified_senders(0).await.unwrap().is_empty());
    inbox.close().await;
}

#[tokio::test]
async fn the_wins_table_is_kept_in_the_order_it_changed_and_read_back() {
    use netsend_proto::wins_server::{Change, Member, Record};
    use std::net::Ipv4Addr;
    use std::time::{Duration, UNIX_EPOCH};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
    let member = |host: u8, secs: u64| Member {
        address: Ipv4Addr::new(192, 0, 2, host),
        expires: at(secs),
    };
    let name = |text: &str| netsend_wire::NetbiosName::new(text, 0).unwrap();
    let record = |text: &str, group: bool, members: Vec<Member>| Record {
        name: name(text),
        group,
        nb_flags: if group { 0xE000 } else { 0x6000 },
        members,
        released: false,
    };
    {
        let inbox = Inbox::open(&path, 0).unwrap();
        // Handed over in order, committed in order: the last change of a
        // name is what stays.
        let changes = [
            Change::Put(record("BOB", false, vec![member(10, 100)])),
            Change::Put(record("BOB", false, vec![member(11, 200)])),
            Change::Put(record(
                "STAFF",
                true,
                vec![member(10, 100), member(11, 300)],
            )),
            Change::Put(record("GONE", false, vec![member(12, 100)])),
            Change::Remove(name("GONE")),
        ];
        let pending: Vec<_> = changes.into_iter().map(|c| inbox.wins_change(c)).collect();
        for p in pending {
            p.await.unwrap();
        }
        let mut released = record("OLD", false, vec![member(13, 50)]);
        released.released = true;
        inbox.wins_change(Change::Put(released)).await.unwrap();
        inbox.close().await;
    }
    let inbox = Inbox::open(&path, 0).unwrap();
    let mut got = inbox.wins_records().await.unwrap();
    got.sort_by_key(|r| r.name);
    let names: Vec<_> = got.iter().map(|r| (r.name, r.group, r.released)).collect();
    assert_eq!(
        names,
        [
            (name("BOB"), false, false),
            (name("OLD"), false, true),
            (name("STAFF"), true, false)
        ]
    );
    assert_eq!(got[0].members, [member(11, 200)]);
    let mut staff = got[2].members.clone();
    staff.sort_by_key(|m| m.address);
    assert_eq!(staff, [member(10, 100), member(11, 300)]);
}
