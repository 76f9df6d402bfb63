use serde_json::json;

use super::*;

fn stored(revision: i64, messages: &[(&str, i64)]) -> Conversation {
    Conversation {
        id: "c".into(),
        revision,
        changed: 9,
        title: "Trip".into(),
        meta: r#"{"uploaded_files":{"a":{"fileUri":"u/a"}}}"#.into(),
        created_ms: 1,
        updated_ms: 2,
        deleted_ms: None,
        purged: false,
        messages: messages
            .iter()
            .map(|(id, r)| Message { id: (*id).into(), revision: *r, body: format!("body {id}") })
            .collect(),
    }
}

fn incoming(base: i64, messages: &[(&str, Option<i64>)]) -> Incoming {
    Incoming {
        id: "c".into(),
        title: "Trip".into(),
        meta: json!({"uploaded_files": {"b": {"fileUri": "u/b"}}}).as_object().unwrap().clone(),
        created_ms: 1,
        updated_ms: 5,
        base,
        messages: messages
            .iter()
            .map(|(id, r)| ((*id).to_string(), *r, format!("body {id}")))
            .collect(),
    }
}

fn context() -> Context {
    Context {
        quota: 1 << 20,
        now_ms: 100,
        fork_id: "fork".into(),
        fork_suffix: "(conflict, Firefox on Linux 2026-12-03 08:00 UTC)".into(),
    }
}

/// A conversation written, as its id and its messages' (id, revision).
type Written = (String, Vec<(String, i64)>);

/// The decision's conversations, and its outcome.
fn run(stored: Option<&Conversation>, incoming: Incoming) -> (Vec<Written>, Outcome) {
    match decide(stored, incoming, 0, &context()) {
        Decision::Keep(outcome) => (Vec::new(), outcome),
        Decision::Write(list, outcome) => (
            list.into_iter()
                .map(|c| (c.id, c.messages.into_iter().map(|m| (m.id, m.revision)).collect()))
                .collect(),
            outcome,
        ),
    }
}

fn msgs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(id, r)| ((*id).to_string(), *r)).collect()
}

#[test]
fn a_new_conversation_is_made() {
    let (written, outcome) = run(None, incoming(0, &[("u1", None), ("a1", None)]));
    assert_eq!(outcome, Outcome::Applied);
    assert_eq!(written, [("c".to_string(), msgs(&[("u1", 1), ("a1", 1)]))]);
}

#[test]
fn on_the_latest_revision_it_is_taken_as_sent() {
    let s = stored(3, &[("u1", 1), ("a1", 2)]);
    // Regenerated: the answer replaced; the rest keeps its revision.
    let (written, outcome) = run(Some(&s), incoming(3, &[("u1", Some(1)), ("a2", None)]));
    assert_eq!(outcome, Outcome::Applied);
    assert_eq!(written, [("c".to_string(), msgs(&[("u1", 1), ("a2", 4)]))]);
    // The same again: nothing to write.
    let mut same = incoming(3, &[("u1", Some(1)), ("a1", Some(2))]);
    same.meta = serde_json::from_str(&s.meta).unwrap();
    assert_eq!(run(Some(&s), same), (Vec::new(), Outcome::Applied));
}

#[test]
fn appends_from_two_devices_merge_in_order() {
    // The device had revision 2 (u1, a1); another device appended u2, a2 since.
    let s = stored(3, &[("u1", 1), ("a1", 2), ("u2", 3), ("a2", 3)]);
    let sent = incoming(2, &[("u1", Some(1)), ("a1", Some(2)), ("u3", None), ("a3", None)]);
    let (written, outcome) = run(Some(&s), sent.clone());
    assert_eq!(outcome, Outcome::Merged);
    assert_eq!(
        written,
        [(
            "c".to_string(),
            msgs(&[("u1", 1), ("a1", 2), ("u2", 3), ("a2", 3), ("u3", 4), ("a3", 4)])
        )]
    );
    // The merge keeps both devices' Files.
    let Decision::Write(list, _) = decide(Some(&s), sent, 0, &context()) else { panic!() };
    let meta: Value = serde_json::from_str(&list[0].meta).unwrap();
    assert_eq!(meta["uploaded_files"].as_object().unwrap().len(), 2);
}

#[test]
fn a_retry_of_a_write_that_landed_changes_nothing() {
    let s = stored(3, &[("u1", 1), ("u2", 3)]);
    let (written, outcome) = run(Some(&s), incoming(2, &[("u1", Some(1)), ("u2", None)]));
    assert_eq!((written.len(), outcome), (0, Outcome::Unchanged));
}

#[test]
fn a_device_that_only_fell_behind_adopts_what_is_stored() {
    let mut s = stored(4, &[("u1", 1), ("a1b", 4)]);
    s.messages[1].body = "edited elsewhere".into();
    let (written, outcome) = run(Some(&s), incoming(2, &[("u1", Some(1)), ("a1", Some(2))]));
    assert_eq!((written.len(), outcome), (0, Outcome::Unchanged));
}

#[test]
fn an_edit_while_another_device_appended_makes_a_copy() {
    // The device edited u1 (offline) while another appended u2, a2.
    let s = stored(3, &[("u1", 1), ("a1", 2), ("u2", 3), ("a2", 3)]);
    let mut sent = incoming(2, &[("u1", None), ("a1b", None)]);
    sent.messages[0].2 = "body u1, edited".into();
    let (written, outcome) = run(Some(&s), sent.clone());
    assert_eq!(outcome, Outcome::Forked { fork: "fork".into() });
    assert_eq!(written, [("fork".to_string(), msgs(&[("u1", 1), ("a1b", 1)]))]);
    let Decision::Write(list, _) = decide(Some(&s), sent, 0, &context()) else { panic!() };
    assert_eq!(list[0].title, "Trip (conflict, Firefox on Linux 2026-12-03 08:00 UTC)");
    assert_eq!(list[0].messages[0].body, "body u1, edited", "nothing the device wrote is lost");
}

#[test]
fn an_append_after_a_message_another_device_regenerated_makes_a_copy() {
    // Another device regenerated a1 into a1b; this one appended after a1.
    let s = stored(3, &[("u1", 1), ("a1b", 3)]);
    let sent = incoming(2, &[("u1", Some(1)), ("a1", Some(2)), ("u2", None)]);
    let (written, outcome) = run(Some(&s), sent);
    assert_eq!(outcome, Outcome::Forked { fork: "fork".into() });
    assert_eq!(written[0].1.len(), 3);
}

#[test]
fn a_regenerate_on_a_stale_revision_makes_a_copy() {
    let s = stored(3, &[("u1", 1), ("a1", 2), ("u2", 3)]);
    let (_, outcome) = run(Some(&s), incoming(2, &[("u1", Some(1)), ("a1b", None)]));
    assert_eq!(outcome, Outcome::Forked { fork: "fork".into() });
}

#[test]
fn an_insert_before_a_synced_message_is_not_an_append() {
    let s = stored(3, &[("u1", 1), ("a1", 2), ("u2", 3)]);
    let (_, outcome) = run(Some(&s), incoming(2, &[("x", None), ("u1", Some(1)), ("a1", Some(2))]));
    assert_eq!(outcome, Outcome::Forked { fork: "fork".into() });
}

#[test]
fn a_write_to_a_deleted_conversation_restores_it_with_the_writes() {
    let mut s = stored(3, &[("u1", 1)]);
    s.deleted_ms = Some(50);
    let Decision::Write(list, Outcome::Merged) =
        decide(Some(&s), incoming(1, &[("u1", Some(1)), ("u2", None)]), 0, &context())
    else {
        panic!("not merged")
    };
    assert_eq!(list[0].deleted_ms, None);
    // A device that only had not heard of the deletion does not bring it back.
    assert_eq!(run(Some(&s), incoming(1, &[("u1", Some(1))])).1, Outcome::Unchanged);
}

#[test]
fn a_purged_conversation_written_again_is_made_again() {
    let mut s = stored(7, &[]);
    s.purged = true;
    let (written, outcome) = run(Some(&s), incoming(3, &[("u1", Some(1))]));
    assert_eq!(outcome, Outcome::Applied);
    assert_eq!(written, [("c".to_string(), msgs(&[("u1", 8)]))]);
}

#[test]
fn past_the_quota_only_a_smaller_account_is_written() {
    let s = stored(3, &[("u1", 1), ("a1", 2)]);
    let small = Context { quota: 10, ..context() };
    let bigger = incoming(3, &[("u1", Some(1)), ("a1", Some(2)), ("u2", None)]);
    let at = s.bytes() + 100;
    assert!(matches!(decide(Some(&s), bigger, at, &small), Decision::Keep(Outcome::OverQuota)));
    let smaller = incoming(3, &[("u1", Some(1))]);
    assert!(matches!(decide(Some(&s), smaller, at, &small), Decision::Write(_, Outcome::Applied)));
    assert!(matches!(
        decide(None, incoming(0, &[("u1", None)]), at, &small),
        Decision::Keep(Outcome::OverQuota)
    ));
}
